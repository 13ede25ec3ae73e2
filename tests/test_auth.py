"""`feast serve_registry` with `auth: type: oidc`, over the wire, against
a real OpenID Connect provider (tests/oidc.py: discovery and JWK set over
HTTP, RS256 tokens) whose tokens Feast's own OidcTokenParser checks.

The native server (feast_sqlreg.server.start_server: the front, the
identity cache, permission checks on stored messages) and Feast's own
stack (Feast's RegistryServer over Feast's SqlRegistry, Feast's
interceptors and security manager) serve one registry; every call of a
matrix of users x RPCs x objects gets the same answer from both: the same
message, or the same status and details. Then: the front answers repeated
calls itself (allowed and denied), a token's identity is resolved once,
an expired or forged token is refused as Feast refuses it, a changed
permission is enforced on every replica within a second, and with change
detection broken the permissions are Feast's own read."""

import time

import grpc
import pytest
from feast import FeatureStore
from feast.data_source import DataSource
from feast.entity import Entity
from feast.feature_service import FeatureService
from feast.feature_view import FeatureView
from feast.permissions.action import ALL_ACTIONS, CRUD, AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import (
    CombinedGroupNamespacePolicy,
    GroupBasedPolicy,
    RoleBasedPolicy,
)
from feast.project import Project
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from feast.protos.feast.registry import RegistryServer_pb2_grpc as pb_grpc
from feast.stream_feature_view import StreamFeatureView

import feast_sqlreg.server as native_server
from answers import without_rebuilt_parts
from conftest import RawConnection, urls_of
from oidc import Provider
from test_front import populate, wait_for

pytestmark = pytest.mark.xdist_group("auth")  # one provider, one port set per worker


def permissions():
    return [
        Permission(name="views-for-readers", types=[FeatureView], name_patterns=["driver_.*"],
                   actions=[AuthzedAction.DESCRIBE], policy=RoleBasedPolicy(roles=["reader"])),
        Permission(name="entities-for-g1", types=[Entity], actions=CRUD,
                   policy=GroupBasedPolicy(groups=["g1"])),
        Permission(name="admin", actions=ALL_ACTIONS, policy=RoleBasedPolicy(roles=["admin"])),
        Permission(name="sources", types=[DataSource], name_patterns=[" driver_stats_source "],
                   actions=[AuthzedAction.DESCRIBE], policy=RoleBasedPolicy(roles=["reader"])),
        Permission(name="services", types=[FeatureService],
                   actions=[AuthzedAction.DESCRIBE, AuthzedAction.UPDATE],
                   policy=CombinedGroupNamespacePolicy(groups=["g2"], namespaces=["ns"])),
        Permission(name="projects", types=[Project], actions=[AuthzedAction.DESCRIBE],
                   policy=RoleBasedPolicy(roles=["reader", "admin"])),
        Permission(name="streams-g2", types=[StreamFeatureView], actions=[AuthzedAction.READ_ONLINE],
                   policy=GroupBasedPolicy(groups=["g2"])),
    ]


USERS = {
    "admin": dict(roles=["admin"]),
    "reader": dict(roles=["reader"]),
    "g1": dict(groups=["g1"]),
    "g2": dict(groups=["g2"]),
    "nobody": dict(),
}

GETS = [
    ("GetEntity", "driver"),
    ("GetEntity", "missing"),
    ("GetDataSource", "driver_stats_source"),
    ("GetDataSource", "kafka_source"),
    ("GetFeatureView", "driver_hourly_stats"),
    ("GetStreamFeatureView", "driver_stream_stats"),
    ("GetOnDemandFeatureView", "conv_rate_plus_val"),
    ("GetLabelView", "driver_labels"),
    ("GetFeatureService", "driver_activity"),
    ("GetPermission", "admin"),
    ("GetAnyFeatureView", "driver_hourly_stats"),
    ("GetAnyFeatureView", "conv_rate_plus_val"),
]
LISTS = ["ListEntities", "ListDataSources", "ListFeatureViews", "ListStreamFeatureViews",
         "ListOnDemandFeatureViews", "ListFeatureServices", "ListPermissions",
         "ListAllFeatureViews", "ListProjects"]


def write_repo(path, url, idp):
    path.mkdir(exist_ok=True)
    (path / "feature_store.yaml").write_text(
        "project: proj\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {url}\n  cache_ttl_seconds: 600\n"
        f"online_store:\n  type: sqlite\n  path: {path}/online.db\n"
        "entity_key_serialization_version: 3\n" + idp.auth_yaml()
    )
    return FeatureStore(repo_path=str(path))


def stock_server(store, stock_registry, tls=None):
    """Feast's own registry server stack, in this process: Feast's
    RegistryServer over Feast's SqlRegistry, Feast's interceptors (auth,
    errors) and a security manager over the stock registry."""
    from concurrent import futures

    from feast import registry_server
    from feast.permissions.security_manager import SecurityManager, set_security_manager
    from feast.permissions.server.utils import AuthManagerType

    set_security_manager(SecurityManager(project=store.project, registry=stock_registry))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         interceptors=registry_server._grpc_interceptors(AuthManagerType.OIDC))
    pb_grpc.add_RegistryServerServicer_to_server(
        registry_server.StockRegistryServer(stock_registry, store=store), server)
    if tls:
        cert, key, _ = tls
        credentials = grpc.ssl_server_credentials(((key.read_bytes(), cert.read_bytes()),))
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class Caller:
    def __init__(self, port, tls=None):
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates=tls[2])
            self.channel = grpc.secure_channel(f"localhost:{port}", creds)
        else:
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.RegistryServerStub(self.channel)

    def __call__(self, rpc, token, **fields):
        request = getattr(pb, rpc + "Request")(**fields)
        metadata = [] if token is None else [("authorization", f"Bearer {token}")]
        try:
            response = getattr(self.stub, rpc)(request, metadata=metadata, timeout=10)
        except grpc.RpcError as e:
            return (e.code(), e.details())
        without_rebuilt_parts(response)  # what stock rebuilds on each read
        return ("ok", response)


@pytest.fixture
def secured(make_registry, tmp_path):
    """(idp, tokens, native caller, stock caller, native server, writer)."""
    yield from _secured(make_registry, tmp_path, None)


@pytest.fixture
def secured_tls(make_registry, tmp_path):
    """secured, both servers serving TLS with one certificate."""
    from test_front import make_cert

    yield from _secured(make_registry, tmp_path, make_cert(tmp_path, "server"))


def _secured(make_registry, tmp_path, tls):
    writer = make_registry("native", cache_ttl_seconds=600)
    populate(writer)
    for p in permissions():
        writer.apply_permission(p, "proj")
    stock_registry = make_registry("stock", urls=urls_of(writer), cache_ttl_seconds=600)
    with Provider() as idp:
        store = write_repo(tmp_path / "repo", writer.registry_config.path, idp)
        paths = dict(tls_cert_path=str(tls[0]), tls_key_path=str(tls[1])) if tls else {}
        server = native_server.start_server(store, 0, wait_for_termination=False, **paths)
        stock, stock_port = stock_server(store, stock_registry, tls)
        tokens = {user: idp.token(user, **claims) for user, claims in USERS.items()}
        native, reference = Caller(server.port, tls), Caller(stock_port, tls)
        yield idp, tokens, native, reference, server, writer
        native.channel.close()
        reference.channel.close()
        stock.stop(None)
        server.stop(None)
        store.registry.close()


def matrix():
    for rpc, name in GETS:
        for allow_cache in (True, False):
            yield rpc, dict(name=name, project="proj", allow_cache=allow_cache)
    yield "GetProject", dict(name="proj", allow_cache=True)
    for rpc in LISTS:
        fields = dict(allow_cache=True) if rpc == "ListProjects" else dict(project="proj",
                                                                           allow_cache=True)
        yield rpc, fields


def test_every_decision_is_feasts(secured):
    check_every_decision(*secured)


def test_every_decision_is_feasts_over_tls(secured_tls):
    check_every_decision(*secured_tls)
    assert secured_tls[4].front.stats()["tls_handshakes"] >= 1


def check_every_decision(idp, tokens, native, reference, server, _):
    cases = denied = allowed = 0
    for user, token in tokens.items():
        for rpc, fields in matrix():
            want = reference(rpc, token, **fields)
            for attempt in range(2):  # the second one from the front, when it learned
                got = native(rpc, token, **fields)
                assert got == want, (user, rpc, fields, attempt)
            cases += 1
            denied += want[0] == grpc.StatusCode.PERMISSION_DENIED
            allowed += want[0] == "ok"
    # The matrix holds both outcomes for every kind of call.
    assert denied > 20 and allowed > 20, (denied, allowed)
    stats = server.front.stats()
    assert stats["answered"] > 0 and stats["denied"] > 0, stats
    assert cases == len(tokens) * len(list(matrix()))


def test_the_front_answers_repeated_calls_itself(secured):
    _, tokens, native, reference, server, _ = secured
    fields = dict(name="driver_hourly_stats", project="proj", allow_cache=True)
    first = native("GetFeatureView", tokens["reader"], **fields)
    assert first[0] == "ok"
    before = server.front.stats()
    for _ in range(20):
        assert native("GetFeatureView", tokens["reader"], **fields) == first
        assert native("GetFeatureView", tokens["g1"], **fields)[0] == (
            grpc.StatusCode.PERMISSION_DENIED)
    after = server.front.stats()
    assert after["answered"] - before["answered"] == 20
    assert after["denied"] - before["denied"] == 19  # g1's first call decided in Python
    assert after["relayed"] - before["relayed"] == 1
    # The same message as Feast's stack gives, byte for byte in its details.
    assert native("GetFeatureView", tokens["g1"], **fields) == reference(
        "GetFeatureView", tokens["g1"], **fields)


def test_an_identity_is_resolved_once_per_token(secured):
    idp, tokens, native, _, server, _ = secured
    fields = dict(name="driver", project="proj", allow_cache=True)
    parsed = server.identities.parsed
    for _ in range(10):
        native("GetEntity", tokens["g1"], **fields)
        native("ListEntities", tokens["g1"], project="proj", allow_cache=True)
    assert server.identities.parsed - parsed <= 1
    assert idp.requests["jwks"] <= 2  # Feast's parser caches the key set itself


def test_bad_tokens_are_refused_as_feast_refuses_them(secured):
    idp, _, native, reference, server, _ = secured
    from cryptography.hazmat.primitives.asymmetric import rsa

    forged = idp.token("admin", roles=["admin"],
                       key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    expired = idp.token("admin", roles=["admin"], lifetime=-60)
    fields = dict(name="driver", project="proj", allow_cache=True)
    for token in (forged, expired, "not-a-jwt", None):
        want = reference("GetEntity", token, **fields)
        assert want[0] != "ok"
        for _ in range(3):
            assert native("GetEntity", token, **fields) == want
    assert server.front.stats()["decisions"] == 0  # nothing learned for them


def test_a_token_is_not_trusted_past_its_expiry(secured):
    idp, _, native, reference, server, _ = secured
    token = idp.token("admin", roles=["admin"], lifetime=2)
    fields = dict(name="driver", project="proj", allow_cache=True)
    assert native("GetEntity", token, **fields)[0] == "ok"
    parsed = server.identities.parsed
    time.sleep(2.2)
    # Feast accepts a token up to 10 s past exp (its leeway): the answer
    # is still Feast's, but the identity was resolved again, not reused.
    assert native("GetEntity", token, **fields) == reference("GetEntity", token, **fields)
    assert server.identities.parsed > parsed


def test_a_changed_permission_is_enforced_on_every_replica_within_a_second(secured, tmp_path):
    idp, tokens, native, _, server, writer = secured
    second_store = write_repo(tmp_path / "replica", writer.registry_config.path, idp)
    second = native_server.start_server(second_store, 0, wait_for_termination=False)
    try:
        replicas = [native, Caller(second.port)]
        fields = dict(name="driver", project="proj", allow_cache=True)
        for caller in replicas:  # allowed, and learned by each front
            for _ in range(2):
                assert caller("GetEntity", tokens["g1"], **fields)[0] == "ok"
        revoked = Permission(name="entities-for-g1", types=[Entity], actions=CRUD,
                             policy=GroupBasedPolicy(groups=["g9"]))
        since = time.monotonic()
        writer.apply_permission(revoked, "proj")
        lag = wait_for(lambda: all(
            c("GetEntity", tokens["g1"], **fields)[0] == grpc.StatusCode.PERMISSION_DENIED
            for c in replicas), within=1.0)
        assert time.monotonic() - since < 1.0, lag
    finally:
        replicas[1].channel.close()
        second.stop(None)
        second_store.registry.close()


def test_with_change_detection_stopped_permissions_are_read_as_feast_reads_them(secured):
    idp, tokens, native, reference, server, writer = secured
    fields = dict(name="driver", project="proj", allow_cache=True)
    for _ in range(2):
        assert native("GetEntity", tokens["g1"], **fields)[0] == "ok"
    reg = server._answers._registry
    reg._poller.stop()  # the feed stops, as when its thread can no longer poll
    wait_for(lambda: not reg.feed_healthy(), within=5.0)
    revoked = Permission(name="entities-for-g1", types=[Entity], actions=CRUD,
                         policy=GroupBasedPolicy(groups=["g9"]))
    writer.apply_permission(revoked, "proj")
    # No feed: the front's table is withdrawn (it looks every 0.2 s) and
    # with it what it learned; no cached permissions: Feast's read of the
    # database decides.
    wait_for(lambda: native("GetEntity", tokens["g1"], **fields)[0]
             == grpc.StatusCode.PERMISSION_DENIED, within=2 * native_server.WATCH_SECONDS + 0.1)
    for _ in range(3):
        got = native("GetEntity", tokens["g1"], **fields)
        assert got == reference("GetEntity", tokens["g1"], **fields)
        assert got[0] == grpc.StatusCode.PERMISSION_DENIED


def test_identities_are_bounded_and_only_feasts_answers_are_kept(secured):
    from feast.permissions.auth.auth_manager import get_auth_manager

    from feast_sqlreg._auth import Identities

    idp = secured[0]
    identities = Identities(get_auth_manager().token_parser, lifespan=300, size=3)
    tokens = [idp.token(f"user{i}", roles=["reader"]) for i in range(5)]
    for token in tokens:
        user, until = identities.resolve(token)
        assert user.username.startswith("user") and until > time.time()
    assert len(identities) == 3 and identities.parsed == 5
    identities.resolve(tokens[-1])  # kept: not parsed again
    assert identities.parsed == 5
    with pytest.raises(Exception):
        identities.resolve("not-a-jwt")
    with pytest.raises(Exception):  # refused again, by Feast's parser again
        identities.resolve("not-a-jwt")
    assert identities.parsed == 7 and len(identities) == 3
    # Never kept longer than Feast trusts a key set (jwks_cache_lifespan_seconds).
    short = Identities(get_auth_manager().token_parser, lifespan=5)
    assert short.resolve(tokens[0])[1] <= time.time() + 5


def test_a_decision_learned_for_an_older_table_is_dropped():
    from feast_sqlreg._sqlregistry import Front

    front = Front(0, 1, ["/x/GetEntity"], [1])
    later = time.time() + 60
    try:
        front.set_auth(True)
        generation = front.generation()
        entries = [(0, "proj", "e", 0, ""), (0, "proj", "f", 7, "no")]
        assert front.learn(generation, "Bearer t", later, entries)
        assert front.stats()["decisions"] == 2
        front.set_answers([])  # a new table: what was learned is forgotten
        assert front.stats()["decisions"] == 0 and front.generation() == generation + 1
        assert not front.learn(generation, "Bearer t", later, entries)
        assert not front.learn(generation + 1, "Bearer t", time.time() - 1, entries)
        assert front.stats()["decisions"] == 0
        with pytest.raises(ValueError):
            front.learn(generation + 1, "Bearer t", later, [(0, "proj", "e", 99, "")])
        with pytest.raises(TypeError):
            front.learn(generation + 1, "Bearer t", later, [(0, "proj")])
        with pytest.raises(TypeError):
            front.learn(generation + 1, "Bearer t", later, ["not a tuple"])
    finally:
        front.stop()


def test_service_account_tokens_are_not_cached(secured):
    """A token with a kubernetes.io claim: Feast checks it with the cluster
    on every call (TokenReview), so its identity is never reused. There is
    no cluster here: Feast's parser refuses it, every time, as stock does."""
    idp, _, native, reference, server, _ = secured
    token = idp.token("system:serviceaccount:ns:sa", **{"kubernetes.io": {"namespace": "ns"}})
    fields = dict(name="driver", project="proj", allow_cache=True)
    parsed = server.identities.parsed
    for _ in range(3):
        assert native("GetEntity", token, **fields) == reference("GetEntity", token, **fields)
    assert server.identities.parsed - parsed == 3
    assert len(server.identities) == 0 or all(
        t != token for t in server.identities._known)


def test_a_permission_feast_cannot_read_fails_every_check_as_in_feast(secured):
    """Permission's default policy, AllowAll, is stored as an empty policy,
    which Permission.from_proto refuses: with one in the project, stock's
    every permission check raises. So does the native server's, with the
    same status and details, and the front learns nothing for it."""
    _, tokens, native, reference, server, writer = secured
    writer.apply_permission(Permission(name="open", types=[Entity]), "proj")
    fields = dict(name="driver", project="proj", allow_cache=True)
    wait_for(lambda: native("GetEntity", tokens["g1"], **fields)[0] != "ok", within=2.0)
    for rpc, f in [("GetEntity", fields), ("ListEntities", dict(project="proj", allow_cache=True)),
                   ("GetFeatureView", dict(name="driver_hourly_stats", project="proj",
                                           allow_cache=True))]:
        want = reference(rpc, tokens["admin"], **f)
        assert want[0] != "ok" and "policy" in want[1], want
        for _ in range(2):
            assert native(rpc, tokens["admin"], **f) == want
    assert server.front.stats()["decisions"] == 0


def test_decisions_outlive_writes_that_decide_nothing(secured):
    """A write that changes no permission and no object's class (a
    materialization, a new entity) makes a new answer table, but keeps what
    the front learned: the caller's next Get is still answered natively.
    A changed permission forgets it all (test above)."""
    from datetime import datetime, timedelta, timezone

    _, tokens, native, _, server, writer = secured
    fields = dict(name="driver_hourly_stats", project="proj", allow_cache=True)
    for _ in range(2):
        assert native("GetFeatureView", tokens["reader"], **fields)[0] == "ok"
    learned = server.front.stats()["decisions"]
    assert learned > 0
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    fv = writer.get_feature_view("driver_hourly_stats", "proj")
    writer.apply_materialization(fv, "proj", t0, t0 + timedelta(hours=1))
    writer.apply_entity(Entity(name="rider", join_keys=["rider_id"]), "proj")
    entity = dict(name="rider", project="proj", allow_cache=True)
    wait_for(lambda: native("GetEntity", tokens["admin"], **entity)[0] == "ok", within=2.0)
    before = server.front.stats()
    answer = native("GetFeatureView", tokens["reader"], **fields)
    after = server.front.stats()
    assert answer[0] == "ok" and answer[1].meta.materialization_intervals  # the new table's
    assert after["answered"] - before["answered"] == 1
    assert after["relayed"] == before["relayed"]
