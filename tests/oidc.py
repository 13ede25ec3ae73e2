"""A real OpenID Connect provider for the tests, on a loopback port: the
discovery document and the JWK set over HTTP, and RS256 access tokens
signed with a key made for the run, shaped as Keycloak issues them
(preferred_username, resource_access.<client>.roles, groups). Feast's own
OidcTokenParser fetches both documents and checks the tokens' signatures
against them; nothing of Feast is replaced.

    with Provider() as idp:
        idp.discovery_url            # auth_discovery_url for feature_store.yaml
        idp.token("alice", roles=["reader"], groups=["g1"], lifetime=300)
        idp.requests["jwks"]         # how often the JWK set was fetched
"""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "feast-registry"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Provider:
    def __init__(self, client_id: str = CLIENT_ID):
        self.client_id = client_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.requests = {"discovery": 0, "jwks": 0}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == "/.well-known/openid-configuration":
                    provider.requests["discovery"] += 1
                    body = provider.discovery()
                elif self.path == "/jwks":
                    provider.requests["jwks"] += 1
                    body = provider.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.discovery_url = f"{self.base}/.well-known/openid-configuration"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._http.shutdown()
        self._http.server_close()

    def discovery(self) -> dict:
        return {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/auth",
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
        }

    def jwks(self) -> dict:
        public = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _b64(public.n), "e": _b64(public.e)}]}

    def token(self, username: str, roles=(), groups=(), lifetime: float = 300,
              key=None, **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": self.base,
            "sub": f"sub-{username}",
            "preferred_username": username,
            "iat": now,
            "exp": now + int(lifetime),
            "resource_access": {self.client_id: {"roles": list(roles)}},
            "groups": list(groups),
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm="RS256",
                          headers={"kid": self.kid})

    def auth_yaml(self) -> str:
        """The auth section of a feature_store.yaml that trusts this provider."""
        return (f"auth:\n  type: oidc\n  client_id: {self.client_id}\n"
                f"  auth_discovery_url: {self.discovery_url}\n")
