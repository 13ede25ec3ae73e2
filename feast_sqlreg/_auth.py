"""Who the caller is, once per token: the registry server's auth interceptor.

Feast's AuthInterceptor (feast.permissions.server.grpc) asks the auth
manager's token parser for the caller's identity on every call: for OIDC
an ``asyncio.run`` of a coroutine that decodes the token, checks the
provider's discovery document and the token's signature against the JWK
set, a few hundred microseconds of CPU before the call itself starts.
``CachingAuthInterceptor`` does what Feast's does (the same token
extractor, the same parser, the same security-manager context), but keeps
each token's identity (``Identities``) until the token expires:

- only identities Feast's parser returned are kept; a token it refused is
  handed to the parser again on the next call, which refuses it again with
  its own error;
- a token is kept until its ``exp`` claim (read from the token Feast's
  parser has just verified) and never longer than ``jwks_cache_lifespan_seconds``
  (OIDC's setting, 300 s by default): that is how long Feast's own parser
  keeps trusting a key the provider has since removed, so a cached identity
  is never trusted longer than Feast would trust it;
- at most ``IDENTITIES_MAX`` tokens are kept (expired ones first, then the
  oldest go).

Kubernetes identities are not cached: with ``auth: type: kubernetes`` an
identity (its roles and namespaces) is read from the cluster's RBAC
objects, which change without the token changing, and a service-account
token (one with a ``kubernetes.io`` claim) under OIDC auth is checked with
a TokenReview, which fails once the token is revoked; Feast asks the
cluster on every call, and so does this interceptor. So the front never
learns their decisions: their calls are relayed.
"""

import asyncio
import contextvars
import threading
import time

import grpc

#: At most this many tokens' identities are kept.
IDENTITIES_MAX = 4096

#: How long the current call's identity may be reused (Unix time), set by
#: the interceptor for the handler; 0 when it must not be.
identity_until: contextvars.ContextVar[float] = contextvars.ContextVar(
    "feast_sqlreg_identity_until", default=0.0
)


def _claims(token: str) -> dict:
    """A JWT's claims, unverified ({} when it is not a JWT): Feast's parser
    has verified the token before anything here reads them."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception:
        return {}
    return claims if isinstance(claims, dict) else {}


def _expiry(claims: dict):
    """The numeric ``exp`` claim, or None."""
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


class Identities:
    """token -> (User, until): Feast's parser's answers, each reused until
    ``until`` (Unix time; see the module)."""

    def __init__(self, parser, lifespan: float, cache: bool = True, size: int = IDENTITIES_MAX):
        self._parser = parser
        self._lifespan = float(lifespan)
        self._cache = cache
        self._size = size
        self._known: dict[str, tuple[object, float]] = {}
        self._lock = threading.Lock()
        self.parsed = 0  # calls of Feast's parser, for tests and metrics

    def resolve(self, token: str):
        """(User, until) for token; Feast's parser's exception when it
        refuses the token. until is 0 when the identity is not kept."""
        now = time.time()
        known = self._known.get(token)
        if known is not None and now < known[1]:
            return known
        self.parsed += 1
        user = asyncio.run(self._parser.user_details_from_access_token(token))
        claims = _claims(token) if self._cache else {}
        # A Kubernetes service-account token under OIDC auth: Feast asks the
        # cluster (TokenReview) on every call, and so does this.
        if not self._cache or isinstance(claims.get("kubernetes.io"), dict):
            return user, 0.0
        until = now + self._lifespan
        exp = _expiry(claims)
        if exp is not None:
            until = min(until, exp)
        entry = (user, until)
        if until > now:
            with self._lock:
                if len(self._known) >= self._size:
                    self._evict(now)
                self._known[token] = entry
        return entry

    def _evict(self, now: float) -> None:
        for token in [t for t, (_, until) in self._known.items() if until <= now]:
            del self._known[token]
        while len(self._known) >= self._size:
            del self._known[next(iter(self._known))]

    def __len__(self) -> int:
        return len(self._known)


class CachingAuthInterceptor(grpc.ServerInterceptor):
    """Feast's AuthInterceptor with the caller's identity from Identities
    (a fork of ``AuthInterceptor.intercept_service``: _internals has its
    fingerprint). As Feast's, it runs in the call's own contextvars
    context, which grpcio hands on to the handler: the security manager's
    current user and project are the call's."""

    def __init__(self, identities: Identities):
        self.identities = identities

    def intercept_service(self, continuation, handler_call_details):
        from feast.permissions.auth.auth_manager import get_auth_manager
        from feast.permissions.security_manager import get_security_manager

        sm = get_security_manager()
        if sm is not None:
            auth_manager = get_auth_manager()
            token = auth_manager.token_extractor.extract_access_token(
                metadata=dict(handler_call_details.invocation_metadata)
            )
            user, until = self.identities.resolve(token)
            sm.set_current_user(user)
            identity_until.set(until)
        handler = continuation(handler_call_details)
        if sm is None or handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        def project_aware_behavior(request, context):
            token = sm.set_current_project(getattr(request, "project", None))
            try:
                return behavior(request, context)
            finally:
                sm.reset_current_project(token)

        return grpc.unary_unary_rpc_method_handler(
            project_aware_behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def interceptors(auth_type, auth_config):
    """The registry server's interceptors, as Feast's start_server gives
    them (``_grpc_interceptors``), with CachingAuthInterceptor in place of
    Feast's AuthInterceptor; (interceptors, Identities or None)."""
    from feast.permissions.auth.auth_manager import get_auth_manager
    from feast.permissions.server.grpc import AuthInterceptor
    from feast.permissions.server.utils import AuthManagerType

    from feast_sqlreg import _internals

    stock = _internals.grpc_interceptors(auth_type)
    if auth_type == AuthManagerType.NONE:
        return stock, None
    oidc = auth_type == AuthManagerType.OIDC
    lifespan = getattr(auth_config, "jwks_cache_lifespan_seconds", 300) if oidc else 0
    identities = Identities(get_auth_manager().token_parser, lifespan, cache=oidc)
    swapped = [CachingAuthInterceptor(identities) if isinstance(i, AuthInterceptor) else i
               for i in stock]
    return swapped, identities
