"""The native gRPC front of `feast serve_registry` (src/front/front.c,
feast_sqlreg.server.start_server), over the wire with a real gRPC client:
cached Gets answered natively are byte for byte what Feast's grpcio server
answers, everything else is relayed unchanged (errors, lists, health,
reflection, large messages, deadlines), and the answers follow the
registry's writes within a second; with TLS (serve_registry --key
--cert), the front terminates it with Feast's files, answers the same
bytes as Feast's own TLS server, and follows rotated certificates."""

import os
import socket
import subprocess
import threading
import time

import grpc
import pytest
from feast import FeatureStore, Field
from google.protobuf.empty_pb2 import Empty
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from feast.protos.feast.registry import RegistryServer_pb2_grpc as pb_grpc
from feast.types import Float32
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import feast_sqlreg._changes as _changes
import feast_sqlreg.registry as native_registry
import feast_sqlreg.server as native_server
import objects as o
from conftest import config

GETS = {
    "GetEntity": ("driver", o.entity),
    "GetDataSource": ("driver_stats_source", o.file_source),
    "GetFeatureView": ("driver_hourly_stats", o.feature_view),
    "GetStreamFeatureView": ("driver_stream_stats", o.stream_feature_view),
    "GetOnDemandFeatureView": ("conv_rate_plus_val", o.on_demand_feature_view),
    "GetLabelView": ("driver_labels", o.label_view),
    "GetFeatureService": ("driver_activity", o.feature_service),
}


def served_store(tmp_path, path, read_path=None):
    """A FeatureStore on path (and read_path) in tmp_path, cache TTL 600,
    and start_server's front on it: (store, server, channel, stub)."""
    read = f"  read_path: {read_path}\n" if read_path else ""
    (tmp_path / "feature_store.yaml").write_text(
        "project: proj\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {path}\n{read}"
        "  cache_ttl_seconds: 600\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp_path))
    server = native_server.start_server(store, 0, wait_for_termination=False)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return store, server, channel, pb_grpc.RegistryServerStub(channel)


def populate(reg):
    reg.apply_entity(o.entity(), "proj")
    reg.apply_data_source(o.file_source(), "proj")
    reg.apply_data_source(o.kafka_source(), "proj")
    reg.apply_data_source(o.push_source(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    reg.apply_feature_view(o.stream_feature_view(), "proj")
    reg.apply_feature_view(o.on_demand_feature_view(), "proj")
    reg.apply_feature_view(o.label_view(), "proj")
    reg.apply_feature_service(o.feature_service(), "proj")


@pytest.fixture
def served(make_registry, tmp_path):
    """(stub, front server, writer registry): a populated registry served
    by start_server in this process, and a registry that writes to it."""
    writer = make_registry("native", cache_ttl_seconds=600)
    populate(writer)
    store, server, channel, stub = served_store(tmp_path, writer.registry_config.path)
    yield stub, server, writer, store
    channel.close()
    server.stop(None)
    store.registry.close()


def grpc_servicer(store):
    """Feast's servicer as the grpcio server behind the front runs it."""
    from feast import registry_server

    return registry_server.RegistryServer(store.registry, store=store)


def call(stub, rpc, name, allow_cache=True, project="proj"):
    request = getattr(pb, rpc + "Request")(name=name, project=project, allow_cache=allow_cache)
    return getattr(stub, rpc)(request)


def name_of(message):
    return message.spec.name if message.DESCRIPTOR.fields_by_name.get("spec") else message.name


def found(stub, rpc, name, allow_cache=True):
    """The answer, or None for NOT_FOUND."""
    try:
        return call(stub, rpc, name, allow_cache)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
        return None


def wait_for(predicate, within=1.0):
    since = time.monotonic()
    while not predicate():
        assert time.monotonic() - since < within, f"not within {within} s"
        time.sleep(0.01)
    return time.monotonic() - since


def test_gets_are_answered_natively_and_equal_feasts(served):
    stub, server, _, store = served
    servicer = grpc_servicer(store)
    before = server.front.stats()
    for rpc, (name, _) in GETS.items():
        for allow_cache in (True, False):
            wire = call(stub, rpc, name, allow_cache)
            request = getattr(pb, rpc + "Request")(name=name, project="proj", allow_cache=allow_cache)
            local = getattr(servicer, rpc)(request, None)
            # Field for field; not byte for byte: protobuf writes map
            # entries (tags) in no fixed order, so two equal messages parsed
            # at different times may serialize differently.
            assert wire == local, (rpc, allow_cache)
    after = server.front.stats()
    assert after["answered"] - before["answered"] == len(GETS)  # the cached ones, from the table
    # The uncached, from the database, but for the on demand feature view:
    # its pickled UDF is bytes that are neither UTF-8 nor a message, so the
    # front cannot rule out a string Feast would reject, and relays it.
    assert after["fetched"] - before["fetched"] == len(GETS) - 1
    assert after["relayed"] - before["relayed"] == 1


def test_misses_and_other_calls_are_relayed_unchanged(served):
    stub, server, _, store = served
    for rpc in GETS:
        with pytest.raises(grpc.RpcError) as e:
            call(stub, rpc, "nope")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert "nope" in e.value.details() and "does not exist" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        call(stub, "GetFeatureView", "driver_hourly_stats", project="elsewhere")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    listed = stub.ListFeatureViews(pb.ListFeatureViewsRequest(project="proj", allow_cache=True))
    assert [v.spec.name for v in listed.feature_views] == ["driver_hourly_stats"]
    proto = stub.Proto(Empty())
    assert len(proto.feature_views) == 1 and len(proto.projects) == 1
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services="")] * 3  # a stream
    answers = list(reflection.ServerReflectionInfo(iter(requests)))
    assert len(answers) == 3
    assert "feast.registry.RegistryServer" in {
        s.name for s in answers[0].list_services_response.service
    }
    channel.close()


def test_large_answers_and_deadlines(served):
    stub, server, writer, _ = served
    schema = [Field(name=f"feature_{i:05d}", dtype=Float32) for i in range(3000)]
    for i in range(8):
        writer.apply_feature_view(o.feature_view(name=f"wide_{i}", schema=schema), "proj")
    listed = stub.ListFeatureViews(pb.ListFeatureViewsRequest(project="proj", allow_cache=False))
    size = listed.ByteSize()
    assert size > 400_000 and len(listed.feature_views) == 9  # many frames, past any window
    wait_for(lambda: found(stub, "GetFeatureView", "wide_7") is not None)
    big = call(stub, "GetFeatureView", "wide_7")
    assert len(big.spec.features) == 3000
    with pytest.raises(grpc.RpcError) as e:  # cancelled mid-answer: the front goes on
        stub.ListFeatureViews(pb.ListFeatureViewsRequest(project="proj", allow_cache=False),
                              timeout=0.001)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert name_of(call(stub, "GetEntity", "driver")) == "driver"
    wait_for(lambda: server.front.stats()["held"] == 0)  # the cancelled answer let go too


def test_large_requests_pass_through_the_front(served):
    """Requests past the front's 1 MB stream window: the front passes the
    body on as it comes and only then lets the client send more."""
    stub, server, writer, _ = served
    before = server.front.stats()
    entity = o.entity("huge", description="x" * (3 << 20)).to_proto()
    stub.ApplyEntity(pb.ApplyEntityRequest(entity=entity, project="proj", commit=True))
    got = call(stub, "GetEntity", "huge", allow_cache=False)
    assert len(got.spec.description) == 3 << 20
    # A Get the front could answer, but padded past what a Get can be (an
    # unknown field of 200 KB, which Feast's parser skips): relayed as it
    # comes, before its end, and Feast's server answers it.
    request = pb.GetEntityRequest(name="driver", project="proj", allow_cache=True)
    padded = request.SerializeToString() + b"\xfa\x3f" + _varint(200_000) + b"p" * 200_000
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        raw = channel.unary_unary(
            "/feast.registry.RegistryServer/GetEntity",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        answer = raw(padded)
    assert answer == call(stub, "GetEntity", "driver").SerializeToString()
    after = server.front.stats()
    # ApplyEntity, the padded Get (the cached Get is the front's own).
    assert after["relayed"] - before["relayed"] == 2, (before, after)
    wait_for(lambda: server.front.stats()["held"] == 0)


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_requests_with_fields_feast_does_not_name_are_relayed(served):
    """The front reads a Get request with the field numbers of Feast's own
    descriptors, and answers nothing it cannot read whole: a field number
    they do not name (which Feast's parser keeps as unknown) sends the call
    to Feast's server, cached or not, whose answer the client gets."""
    stub, server, _, store = served
    fields = pb.GetFeatureViewRequest.DESCRIPTOR.fields_by_name
    numbers = (fields["name"].number, fields["project"].number, fields["allow_cache"].number)
    assert native_server._request_fields("GetFeatureView") == numbers
    unnamed = max(f.number for f in pb.GetFeatureViewRequest.DESCRIPTOR.fields) + 1
    servicer = grpc_servicer(store)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        raw = channel.unary_unary(
            "/feast.registry.RegistryServer/GetFeatureView",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        for allow_cache in (True, False):
            request = pb.GetFeatureViewRequest(
                name="driver_hourly_stats", project="proj", allow_cache=allow_cache
            )
            for extra in (_varint(unnamed << 3) + b"\x01",  # a varint
                          _varint(unnamed << 3 | 2) + b"\x02hi",  # a string
                          _varint(1000 << 3 | 2) + b"\x00"):  # far past Feast's numbers
                before = server.front.stats()
                answer = raw(request.SerializeToString() + extra)
                after = server.front.stats()
                assert after["relayed"] - before["relayed"] == 1, (allow_cache, extra)
                assert after["answered"] == before["answered"], (allow_cache, extra)
                assert after["fetched"] == before["fetched"], (allow_cache, extra)
                feasts = servicer.GetFeatureView(pb.GetFeatureViewRequest.FromString(
                    request.SerializeToString() + extra), None)
                assert type(feasts).FromString(answer) == feasts
        # The same request without the extra field: the front's own answer.
        before = server.front.stats()
        request = pb.GetFeatureViewRequest(name="driver_hourly_stats", project="proj",
                                           allow_cache=True)
        answer = raw(request.SerializeToString())
        after = server.front.stats()
        assert after["answered"] - before["answered"] == 1
        assert after["relayed"] == before["relayed"]
        assert type(feasts).FromString(answer) == servicer.GetFeatureView(request, None)


def test_request_fields_are_checked():
    """Front(request_fields=...): one (name, project, allow_cache) tuple of
    field numbers per method, each 0 or a distinct field number."""
    from feast_sqlreg._sqlregistry import Front

    methods = ["/t.S/GetA", "/t.S/GetB"]
    kinds = [native_registry.ENTITY, native_registry.FEATURE_VIEW]
    for bad in ([(1, 2, 3)], [(1, 2, 3), (1, 1, 3)], [(1, 2, 3), (4, 0, 4)],
                [(1, 2, 3), (1, 2, -1)], [(1, 2, 3), (1, 2, 1 << 29)], [(1, 2, 3), (1, 2)],
                [(1, 2, 3), None], 7):
        with pytest.raises((ValueError, TypeError)):
            Front(0, 1, methods, kinds, request_fields=bad)
    front = Front(0, 1, methods, kinds, request_fields=[(1, 2, 3), (4, 0, 0)])
    assert front.port > 0
    front.stop()


def test_answers_follow_writes_within_a_second(served):
    stub, server, writer, _ = served
    assert call(stub, "GetEntity", "driver").spec.description != "changed"
    writer.apply_entity(o.entity(description="changed"), "proj")
    lag = wait_for(lambda: call(stub, "GetEntity", "driver").spec.description == "changed")
    writer.apply_entity(o.entity("rider"), "proj")
    lag = max(lag, wait_for(lambda: found(stub, "GetEntity", "rider") is not None))
    writer.delete_entity("driver", "proj")
    lag = max(lag, wait_for(lambda: found(stub, "GetEntity", "driver") is None))
    assert found(stub, "GetEntity", "driver", allow_cache=False) is None
    print(f"slowest change seen through the front after {lag:.3f} s")


def test_without_change_detection_nothing_is_answered_natively(make_registry, tmp_path,
                                                              monkeypatch):
    """Then a cached read may have to refresh first (cache_ttl_seconds):
    only Feast's server can do that, so the front relays every call."""
    monkeypatch.setattr(_changes, "POLL_SECONDS", 0)
    writer = make_registry("native")
    populate(writer)
    (tmp_path / "feature_store.yaml").write_text(
        "project: proj\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {writer.registry_config.path}\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp_path))
    server = native_server.start_server(store, 0, wait_for_termination=False)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.RegistryServerStub(channel)
            for rpc, (name, _) in GETS.items():
                assert name_of(call(stub, rpc, name)) == name
        stats = server.front.stats()
        assert stats["answered"] == 0 and stats["relayed"] == len(GETS)
    finally:
        server.stop(None)
        store.registry.close()


def test_many_clients_at_once(served):
    stub, server, _, _ = served
    failures = []

    def client(k):
        try:
            for i in range(150):
                rpc, (name, _) = list(GETS.items())[(i + k) % len(GETS)]
                if i % 10 == 9:
                    assert found(stub, rpc, f"missing_{i}", allow_cache=i % 3 != 0) is None
                else:
                    assert name_of(call(stub, rpc, name, allow_cache=i % 3 != 0)) == name
        except Exception as e:  # reported below
            failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert server.front.stats()["answered"] > 500


def test_more_calls_at_once_than_a_connection_takes(served):
    """300 calls in flight on one channel, past the 100 streams the front
    takes per connection: the client queues the rest, and every call gets
    its answer (cached Gets from the front, lists relayed)."""
    stub, server, _, _ = served
    futures = []
    for i in range(300):
        if i % 5 == 0:
            request = pb.ListEntitiesRequest(project="proj", allow_cache=True)
            futures.append(("list", stub.ListEntities.future(request)))
        else:
            request = pb.GetEntityRequest(name="driver", project="proj", allow_cache=True)
            futures.append(("get", stub.GetEntity.future(request)))
    for kind, future in futures:
        answer = future.result(timeout=30)
        if kind == "list":
            assert [e.spec.name for e in answer.entities] == ["driver"]
        else:
            assert answer.spec.name == "driver"
    wait_for(lambda: server.front.stats()["held"] == 0)


def test_the_front_applies_with_tls_and_auth_but_not_when_switched_off(served, monkeypatch):
    _, _, _, store = served
    assert native_server._front_applies(store, "", "")
    assert native_server._front_applies(store, "key.pem", "cert.pem")  # it terminates TLS
    monkeypatch.setattr(store.config.auth_config, "type", "oidc")
    assert native_server._front_applies(store, "", "")  # answers what it learned (test_auth)
    monkeypatch.setattr(native_server, "FRONT", False)
    monkeypatch.setattr(store.config.auth_config, "type", "no_auth")
    assert not native_server._front_applies(store, "", "")


def test_a_row_feast_cannot_parse_gets_feasts_error(served):
    """Invalid UTF-8 in a string field passes the C core's wire check, but
    not the front's string check: the call is relayed, and the client gets
    the error Feast's own server gives, naming the row."""
    from test_bad_rows import _write_raw

    stub, server, writer, store = served
    spec = b"\x0a\x02\xc3\x28"  # EntitySpecV2.name = invalid UTF-8
    _write_raw(writer, "entities", "entity_proto", "entity_name", "driver",
               b"\x0a" + bytes([len(spec)]) + spec)
    with pytest.raises(grpc.RpcError) as native:
        call(stub, "GetEntity", "driver", allow_cache=False)
    assert server.front.stats()["fetched"] == 0  # relayed
    # Feast's own server (grpcio alone) on the same registry:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch_front = native_server.FRONT
    native_server.FRONT = False
    try:
        plain = native_server.start_server(store, port, wait_for_termination=False)
    finally:
        native_server.FRONT = monkeypatch_front
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as feast:
                call(pb_grpc.RegistryServerStub(channel), "GetEntity", "driver", allow_cache=False)
    finally:
        plain.stop(None)
    assert native.value.code() == feast.value.code()
    assert native.value.details() == feast.value.details()
    assert "entities row 'driver' in project 'proj'" in native.value.details()


# ---- TLS ---------------------------------------------------------------------


def make_cert(directory, name):
    """A self-signed certificate for localhost (and 127.0.0.1) and its key,
    made now with the openssl command: (cert path, key path, cert bytes)."""
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN=localhost/O={name}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key, cert.read_bytes()


def free_port():
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::", 0))
        return sock.getsockname()[1]


def tls_channel(port, root):
    """A channel to localhost:port trusting root only, on connections of its
    own (grpcio shares connections between channels otherwise)."""
    return grpc.secure_channel(
        f"localhost:{port}", grpc.ssl_channel_credentials(root_certificates=root),
        options=[("grpc.use_local_subchannel_pool", 1)],
    )


def raw_call(channel, rpc, request, timeout=10):
    """The serialized answer of rpc, as the server sent it."""
    method = channel.unary_unary(f"/feast.registry.RegistryServer/{rpc}",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=lambda b: b)
    return method(request, timeout=timeout)


@pytest.fixture
def served_tls(make_registry, tmp_path):
    """A populated registry served with TLS by start_server (the front) and
    by Feast's own start_server, on the same files: (front server, stock
    server, files dir, cert path, key path, cert bytes, store, writer)."""
    writer = make_registry("native", cache_ttl_seconds=600)
    populate(writer)
    certs = tmp_path / "certs"
    certs.mkdir()
    made, key_made, root = make_cert(certs, "first")
    cert, key = certs / "tls.crt", certs / "tls.key"
    os.replace(made, cert)
    os.replace(key_made, key)
    (tmp_path / "feature_store.yaml").write_text(
        "project: proj\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {writer.registry_config.path}\n"
        "  cache_ttl_seconds: 600\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp_path))
    server = native_server.start_server(store, 0, wait_for_termination=False,
                                        tls_key_path=str(key), tls_cert_path=str(cert))
    stock_port = free_port()
    from feast_sqlreg import _internals

    stock = _internals.stock_start_server(store, stock_port, wait_for_termination=False,
                                          tls_key_path=str(key), tls_cert_path=str(cert))
    stock.port = stock_port
    yield server, stock, certs, cert, key, root, store, writer
    stock.stop(None)
    server.stop(None)
    store.registry.close()


def test_tls_gets_are_answered_natively_with_feasts_bytes(served_tls):
    """Over TLS (gRPC's client checks the certificate and that ALPN chose
    h2), each cached Get is the front's own answer and the very bytes
    Feast's own TLS server sends; an uncached one is read from the database
    by the front, and equal field for field."""
    server, stock, _, _, _, root, _, _ = served_tls
    assert server.front.stats()["tls_handshakes"] == 0
    with tls_channel(server.port, root) as ours, tls_channel(stock.port, root) as feasts:
        for rpc, (name, _) in GETS.items():
            request = getattr(pb, rpc + "Request")(name=name, project="proj", allow_cache=True)
            before = server.front.stats()
            answer = raw_call(ours, rpc, request)
            after = server.front.stats()
            assert after["answered"] - before["answered"] == 1, rpc
            assert after["relayed"] == before["relayed"], rpc
            assert answer == raw_call(feasts, rpc, request), rpc
        # Uncached: field for field (the stored bytes with the project stamp
        # cleared at their end, where Feast writes the fields in order).
        request = pb.GetEntityRequest(name="driver", project="proj", allow_cache=False)
        before = server.front.stats()
        fetched = raw_call(ours, "GetEntity", request)
        assert server.front.stats()["fetched"] - before["fetched"] == 1
        entity = type(call(pb_grpc.RegistryServerStub(feasts), "GetEntity", "driver"))
        assert entity.FromString(fetched) == entity.FromString(
            raw_call(feasts, "GetEntity", request))
    stats = server.front.stats()
    assert stats["tls_handshakes"] >= 1 and stats["tls_handshake_failures"] == 0


def test_tls_lists_and_errors_are_relayed_unchanged(served_tls):
    server, stock, _, _, _, root, _, _ = served_tls
    with tls_channel(server.port, root) as ours, tls_channel(stock.port, root) as feasts:
        request = pb.ListFeatureViewsRequest(project="proj", allow_cache=True)
        before = server.front.stats()
        listed = raw_call(ours, "ListFeatureViews", request)
        assert server.front.stats()["relayed"] - before["relayed"] == 1
        assert (pb.ListFeatureViewsResponse.FromString(listed)
                == pb.ListFeatureViewsResponse.FromString(raw_call(feasts, "ListFeatureViews",
                                                                   request)))
        assert [v.spec.name for v in pb.ListFeatureViewsResponse.FromString(listed)
                .feature_views] == ["driver_hourly_stats"]
        for rpc in GETS:
            request = getattr(pb, rpc + "Request")(name="nope", project="proj", allow_cache=True)
            errors = []
            for channel in (ours, feasts):
                with pytest.raises(grpc.RpcError) as e:
                    raw_call(channel, rpc, request)
                errors.append((e.value.code(), e.value.details()))
            assert errors[0] == errors[1], rpc
            assert errors[0][0] == grpc.StatusCode.NOT_FOUND


def test_tls_port_refuses_plaintext(served_tls):
    server, _, _, _, _, root, _, _ = served_tls
    before = server.front.stats()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.RegistryServerStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            call(stub, "GetEntity", "driver").SerializeToString()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    wait_for(lambda: server.front.stats()["tls_handshake_failures"] > before[
        "tls_handshake_failures"])
    assert server.front.stats()["answered"] == before["answered"]
    with tls_channel(server.port, root) as channel:  # TLS still works
        assert name_of(call(pb_grpc.RegistryServerStub(channel), "GetEntity", "driver")) == \
            "driver"


def test_tls_follows_rotated_certificates(served_tls):
    """The files replaced under the running server (a new pair, written to
    temporary names and renamed over the old, as cert-manager does): within
    about two seconds a client trusting only the new certificate gets in,
    one trusting only the old no longer does; a channel opened before goes
    on."""
    server, _, certs, cert, key, old_root, _, _ = served_tls
    before = server.front.stats()
    opened = tls_channel(server.port, old_root)
    old_stub = pb_grpc.RegistryServerStub(opened)
    assert name_of(call(old_stub, "GetEntity", "driver")) == "driver"
    made, key_made, new_root = make_cert(certs, "second")
    os.replace(key_made, key)
    os.replace(made, cert)
    since = time.monotonic()

    def works(root):
        with tls_channel(server.port, root) as channel:
            try:
                call(pb_grpc.RegistryServerStub(channel), "GetEntity", "driver")
                return True
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, e
                return False

    while not works(new_root):
        assert time.monotonic() - since < 2.5, "the new certificate was not picked up"
        time.sleep(0.1)
    assert not works(old_root)
    after = server.front.stats()
    assert after["tls_reloads"] - before["tls_reloads"] == 1
    assert after["tls_reload_failures"] == before["tls_reload_failures"]
    assert name_of(call(old_stub, "GetEntity", "driver")) == "driver"  # its connection stays
    opened.close()


def test_front_tls_arguments(tmp_path):
    """Front(tls_cert=, tls_key=): both or neither; a file that does not
    load is an OSError naming it and saying why."""
    from feast_sqlreg._sqlregistry import Front

    methods, kinds = ["/t.S/GetA"], [native_registry.ENTITY]
    cert, key, _ = make_cert(tmp_path, "args")
    for only in ({"tls_cert": str(cert)}, {"tls_key": str(key)}):
        with pytest.raises(ValueError, match="both or neither"):
            Front(0, 1, methods, kinds, **only)
    missing = tmp_path / "missing.pem"
    with pytest.raises(OSError, match=f"certificate chain from {missing}: No such file"):
        Front(0, 1, methods, kinds, tls_cert=str(missing), tls_key=str(key))
    with pytest.raises(OSError, match=f"private key from {cert}: "):
        Front(0, 1, methods, kinds, tls_cert=str(cert), tls_key=str(cert))
    other, other_key, _ = make_cert(tmp_path, "other")
    with pytest.raises(OSError, match=f"key in {other_key} does not match the certificate in "
                                      f"{cert}"):
        Front(0, 1, methods, kinds, tls_cert=cert, tls_key=other_key)  # path-likes too
    front = Front(0, 1, methods, kinds, tls_cert=str(cert), tls_key=str(key))
    stats = front.stats()
    assert {"tls_handshakes", "tls_handshake_failures", "tls_reloads",
            "tls_reload_failures"} <= set(stats)
    assert stats["tls_handshakes"] == stats["tls_reloads"] == 0
    front.stop()
