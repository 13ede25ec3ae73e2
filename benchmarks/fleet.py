"""The deployment feast-sqlreg exists for: several `feast serve_registry`
replicas over one PostgreSQL registry, many gRPC clients, and writers.
Stock (FEAST_SQLREG_DISABLE=1: stock registry and stock server) and native
run one after the other on the same server, with the same registry contents.

    python benchmarks/fleet.py [--replicas 3] [--views 200] [--clients 8]
                               [--seconds 8] [--ttl 600] [--pgbouncer] [--standby]

For each read scenario (cached/uncached GetFeatureView and ListFeatureViews)
the clients call the replicas round robin for --seconds; reported:
requests/s, p50/p99 latency, and replica CPU per request (user + system time
of the replica processes, from /proc). Then write visibility: an entity is
applied by a writer process, and every replica is asked (cached) until all
answer it; reported: the time until the last replica did (up to 15 s).
The table goes to benchmarks/RESULTS.md, section "## Fleet".

--pgbouncer: the replicas and the writer reach the server through the
PgBouncer in transaction mode that scripts/databases.sh runs (port 6435),
with prepare_threshold: null, the setting both registries need there;
section "## Fleet, through PgBouncer".

--standby: the replicas read from the hot standby scripts/databases.sh runs
(port 5433; read_path), and write to the primary; section "## Fleet,
reading a hot standby".

--tls: the replicas serve TLS (`feast serve_registry --key --cert`, a
self-signed certificate made for the run) and the clients connect with it;
section "## Fleet, TLS". --tls --oidc: and `auth: type: oidc` against a
local OpenID Connect provider (tests/oidc.py: discovery and JWK set over
HTTP, RS256 tokens, each client with a token of its own, a Permission
granting DESCRIBE to their role); section "## Fleet, TLS + OIDC", with the
time a changed permission takes to be enforced on every replica. `make
fleet-secure` runs both.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
warnings.simplefilter("ignore")

import grpc  # noqa: E402
from feast.protos.feast.registry import RegistryServer_pb2 as pb  # noqa: E402
from feast.protos.feast.registry import RegistryServer_pb2_grpc as pb_grpc  # noqa: E402

PG = os.environ.get("FEAST_SQLREG_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Both registries read this URL form (native ignores the driver name).
SA_SCHEME = "postgresql+psycopg://"
PGBOUNCER_PORT = int(os.environ.get("FEAST_SQLREG_PGBOUNCER_PORT", "6435"))
STANDBY_PORT = int(os.environ.get("FEAST_SQLREG_PG_STANDBY_PORT", "5433"))
PROJECT = "fleet"
VISIBLE_WITHIN = 15.0

POPULATE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from feast import Field
    from feast.infra.registry.sql import SqlRegistry, SqlRegistryConfig
    from feast.types import Float32
    import objects as o
    reg = SqlRegistry(SqlRegistryConfig(registry_type="sql", path={url!r}), {project!r}, None)
    ent, src = o.entity(), o.file_source()
    reg.apply_entity(ent, {project!r})
    reg.apply_data_source(src, {project!r})
    for i in range({views}):
        fv = o.feature_view(name=f"fv_{{i:04d}}", ent=ent, source=src,
                            schema=[Field(name=f"f{{j}}", dtype=Float32) for j in range(8)])
        reg.apply_feature_view(fv, {project!r})
    if {permissions!r}:
        from feast.permissions.action import AuthzedAction
        from feast.permissions.permission import Permission
        from feast.permissions.policy import RoleBasedPolicy
        from feast.project import Project
        from feast import Entity
        for name, types, roles in [("readers", [], ["reader"]), ("probe", [Entity], ["prober"])]:
            reg.apply_permission(Permission(name=name, types=types or None,
                                            actions=[AuthzedAction.DESCRIBE],
                                            policy=RoleBasedPolicy(roles=roles)), {project!r})
    """
)

# The probe permission, flipped by the writer (see permission_visibility).
PROBE_PERMISSION = textwrap.dedent(
    """
    from feast.permissions.action import AuthzedAction
    from feast.permissions.permission import Permission
    from feast.permissions.policy import RoleBasedPolicy
    from feast import Entity
    def probe(roles):
        return Permission(name="probe", types=[Entity], actions=[AuthzedAction.DESCRIBE],
                          policy=RoleBasedPolicy(roles=roles))
    """
)

WRITE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from feast.infra.registry.sql import SqlRegistry, SqlRegistryConfig
    import objects as o
    reg = SqlRegistry(SqlRegistryConfig(registry_type="sql", path={url!r},
                                        sqlalchemy_config_kwargs={kwargs!r}), {project!r}, None)
    {probe}
    for line in sys.stdin:
        word, arg = line.split()
        if word == "entity":
            reg.apply_entity(o.entity(arg), {project!r})
        else:  # "probe": who the probe permission grants DESCRIBE now
            reg.apply_permission(probe([arg]), {project!r})
        print("ok", flush=True)
    """
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def env_for(mode):
    env = dict(os.environ)
    env.pop("FEAST_SQLREG_DISABLE", None)
    if mode == "stock":
        env["FEAST_SQLREG_DISABLE"] = "1"
    return env


def make_certificate(workdir):
    """A self-signed certificate for localhost and its key: (cert, key) paths."""
    cert, key = Path(workdir) / "server.crt", Path(workdir) / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class Security:
    """What --tls and --oidc add: certificate files for the replicas and
    credentials for the clients; the OIDC provider and the clients' tokens."""

    def __init__(self, workdir, tls, oidc):
        self.tls = tls
        self.idp = None
        self.cert = self.key = None
        if tls:
            self.cert, self.key = make_certificate(workdir)
        if oidc:
            from oidc import Provider

            self.idp = Provider().__enter__()

    def serve_args(self):
        return ["--key", str(self.key), "--cert", str(self.cert)] if self.tls else []

    def channel(self, port):
        if not self.tls:
            return grpc.insecure_channel(f"127.0.0.1:{port}")
        creds = grpc.ssl_channel_credentials(root_certificates=self.cert.read_bytes())
        return grpc.secure_channel(f"localhost:{port}", creds)

    def auth_yaml(self):
        return self.idp.auth_yaml() if self.idp else ""

    def metadata(self, user, roles):
        """Call metadata for a user with roles (a token each)."""
        if not self.idp:
            return ()
        return (("authorization", "Bearer " + self.idp.token(user, roles=roles, lifetime=3600)),)

    def close(self):
        if self.idp:
            self.idp.__exit__(None, None, None)


class Fleet:
    """N `feast serve_registry` replicas of one repository."""

    def __init__(self, mode, url, replicas, ttl, workdir, no_prepare=False, read_path=None,
                 security=None):
        self.repo = Path(workdir) / mode
        self.repo.mkdir()
        pooler = ("  sqlalchemy_config_kwargs:\n    connect_args:\n      prepare_threshold: null\n"
                  if no_prepare else "")
        (self.repo / "feature_store.yaml").write_text(
            f"project: {PROJECT}\nprovider: local\n"
            f"registry:\n  registry_type: sql\n  path: {url}\n  cache_ttl_seconds: {ttl}\n"
            + (f"  read_path: {read_path}\n" if read_path else "")
            + pooler +
            f"online_store:\n  type: sqlite\n  path: {self.repo}/online.db\n"
            "entity_key_serialization_version: 3\n" + security.auth_yaml()
        )
        self.security = security
        self.ports = [free_port() for _ in range(replicas)]
        feast = str(Path(sys.executable).parent / "feast")
        self.procs = [
            subprocess.Popen(
                [feast, "serve_registry", "--port", str(port), *security.serve_args()],
                cwd=self.repo,
                env=env_for(mode),
                stdout=subprocess.DEVNULL,
                stderr=open(self.repo / f"replica{port}.log", "w"),
                start_new_session=True,
            )
            for port in self.ports
        ]
        self.channels = [security.channel(p) for p in self.ports]
        self.stubs = [pb_grpc.RegistryServerStub(c) for c in self.channels]
        for ch in self.channels:
            grpc.channel_ready_future(ch).result(timeout=120)
        #: Each client's call metadata (its own token with --oidc), and the
        #: probe user's (see permission_visibility).
        self.metadata = [security.metadata(f"client{c}", ["reader"]) for c in range(64)]
        self.probe = security.metadata("probe", ["prober"])
        # Warm every replica's cache before measuring.
        for stub in self.stubs:
            stub.ListFeatureViews(pb.ListFeatureViewsRequest(project=PROJECT, allow_cache=True),
                                  metadata=self.metadata[0])

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def close(self):
        for ch in self.channels:
            ch.close()
        for p in self.procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


SCENARIOS = {
    "Get, cached": lambda s, i, m: s.GetFeatureView(
        pb.GetFeatureViewRequest(name=f"fv_{i % 200:04d}", project=PROJECT, allow_cache=True),
        metadata=m,
    ),
    "List, cached": lambda s, i, m: s.ListFeatureViews(
        pb.ListFeatureViewsRequest(project=PROJECT, allow_cache=True), metadata=m
    ),
    "Get, uncached": lambda s, i, m: s.GetFeatureView(
        pb.GetFeatureViewRequest(name=f"fv_{i % 200:04d}", project=PROJECT, allow_cache=False),
        metadata=m,
    ),
    "List, uncached": lambda s, i, m: s.ListFeatureViews(
        pb.ListFeatureViewsRequest(project=PROJECT, allow_cache=False), metadata=m
    ),
}


def load(fleet, call, clients, seconds):
    """Clients call the replicas round robin; (requests, latencies, CPU s)."""
    latencies = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds

    def client(c):
        i = c
        while time.monotonic() < stop:
            stub = fleet.stubs[i % len(fleet.stubs)]
            t0 = time.perf_counter()
            call(stub, i, fleet.metadata[c])
            latencies[c].append(time.perf_counter() - t0)
            i += clients

    cpu0 = fleet.cpu()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cpu = fleet.cpu() - cpu0
    flat = sorted(x for lat in latencies for x in lat)
    return len(flat), flat, cpu


def time_to_all(fleet, writer, command, sees):
    """Writes command through the writer; then seconds from its commit until
    sees(stub) holds on every replica (None: not within VISIBLE_WITHIN)."""
    writer.stdin.write(command + "\n")
    writer.stdin.flush()
    assert writer.stdout.readline().startswith("ok")
    t0 = time.monotonic()
    pending = set(range(len(fleet.stubs)))
    while pending and time.monotonic() - t0 < VISIBLE_WITHIN:
        pending = {r for r in pending if not sees(fleet.stubs[r])}
        time.sleep(0.005)
    return None if pending else time.monotonic() - t0


def get_entity(stub, name, metadata):
    """A cached GetEntity: True when answered, False when refused
    (PERMISSION_DENIED), None when not found."""
    try:
        stub.GetEntity(pb.GetEntityRequest(name=name, project=PROJECT, allow_cache=True),
                       metadata=metadata)
        return True
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return None
        if e.code() != grpc.StatusCode.PERMISSION_DENIED:
            raise
        return False


def visibility(fleet, writer, rounds=5):
    """Seconds from a write's commit until every replica's cached Get finds
    it, per round (None: not within VISIBLE_WITHIN)."""
    lags = []
    for _ in range(rounds):
        name = f"probe_{uuid.uuid4().hex[:8]}"
        lags.append(time_to_all(fleet, writer, f"entity {name}",
                                lambda stub: get_entity(stub, name, fleet.metadata[0])))
    return lags


def permission_visibility(fleet, writer, rounds=6):
    """Seconds from a changed permission's commit until every replica
    enforces it: the probe permission alternately revoked (granted to
    another role) and granted again; each replica is asked a cached
    GetEntity with the probe user's token until all give the new decision
    (None: not within VISIBLE_WITHIN)."""
    lags = []
    for r in range(rounds):
        grant = r % 2 == 1
        lags.append(time_to_all(
            fleet, writer, f"probe {'prober' if grant else 'nobody'}",
            lambda stub, grant=grant: get_entity(stub, "driver", fleet.probe) == grant))
    return lags


def run_mode(mode, url, args, workdir, security):
    if args.pgbouncer:
        url = url.replace(":5432/", f":{PGBOUNCER_PORT}/")
    kwargs = {"connect_args": {"prepare_threshold": None}} if args.pgbouncer else {}
    read_path = url.replace(":5432/", f":{STANDBY_PORT}/") if args.standby else None
    fleet = Fleet(mode, url, args.replicas, args.ttl, workdir, no_prepare=args.pgbouncer,
                  read_path=read_path, security=security)
    results = {}
    try:
        for scenario, call in SCENARIOS.items():
            n, flat, cpu = load(fleet, call, args.clients, args.seconds)
            results[scenario] = {
                "rps": n / args.seconds,
                "p50": statistics.median(flat) * 1e3,
                "p99": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1e3,
                "cpu_ms": cpu / n * 1e3,
            }
            r = results[scenario]
            print(f"{mode:6} {scenario:15} {r['rps']:8.1f} req/s  p50 {r['p50']:7.2f} ms  "
                  f"p99 {r['p99']:7.2f} ms  replica CPU {r['cpu_ms']:7.3f} ms/req", flush=True)
        code = WRITE.format(tests=str(ROOT / "tests"), url=url, project=PROJECT, kwargs=kwargs,
                            probe=PROBE_PERMISSION)
        writer = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env_for(mode),
                                  cwd=workdir)
        try:
            results["visible"] = visibility(fleet, writer)
            if security.idp:
                results["enforced"] = permission_visibility(fleet, writer)
                print(f"{mode:6} changed permission enforced on every replica after: "
                      + ", ".join(fmt_lag(x) for x in results["enforced"]), flush=True)
        finally:
            writer.stdin.close()
            writer.wait(30)
        print(f"{mode:6} write visible on every replica after: "
              + ", ".join(fmt_lag(x) for x in results["visible"]), flush=True)
    finally:
        fleet.close()
    return results


def fmt_lag(x):
    return f">{VISIBLE_WITHIN:.0f} s" if x is None else f"{x:.2f} s"


def create_database():
    import psycopg

    name = f"fsr_fleet_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG.rsplit("/", 1)[0].replace("postgresql://", SA_SCHEME)
    return name, f"{base}/{name}"


def drop_database(name):
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_results(args, stock, native):
    title = ("## Fleet, through PgBouncer" if args.pgbouncer
             else "## Fleet, reading a hot standby" if args.standby
             else "## Fleet, TLS + OIDC" if args.oidc
             else "## Fleet, TLS" if args.tls else "## Fleet")
    pooler = (" The replicas and the writer reach PostgreSQL through PgBouncer 1.18 in "
              "transaction mode (default_pool_size 4), prepare_threshold: null for both."
              if args.pgbouncer else "")
    if args.tls:
        pooler += (" Both serve TLS with the same self-signed RSA-2048 certificate "
                   "(`feast serve_registry --key --cert`); the clients keep their connections.")
    if args.oidc:
        pooler += (" `auth: type: oidc` against a local OpenID Connect provider (discovery and "
                   "JWK set over HTTP, RS256 tokens checked by Feast's OidcTokenParser), each "
                   "client with a token of its own; the registry holds 2 permissions (DESCRIBE "
                   "on everything for role reader, which the clients have; a probe permission "
                   "on entities).")
    if args.standby:
        pooler += (" The replicas read from a streaming hot standby (read_path, port "
                   f"{STANDBY_PORT}) and write to the primary; the writer writes to the primary.")
    lines = [
        title,
        "",
        f"{args.replicas} `feast serve_registry` replicas on one PostgreSQL registry of "
        f"{args.views} feature views, {args.clients} gRPC clients, {args.seconds} s per "
        f"scenario, cache_ttl_seconds {args.ttl}, 2 cores shared by replicas, clients and "
        "server. Stock: Feast's registry and grpcio server; native: feast_sqlreg's registry "
        "behind its native gRPC front (Gets answered in C, the rest relayed to Feast's "
        "grpcio server). Replica CPU counts every thread of the replica processes, not the "
        "database server's. Efficiency = requests per replica CPU-second; ratio = native / "
        "stock." + pooler,
        "",
        "| scenario | stock req/s | native req/s | stock p50 / p99 (ms) | native p50 / p99 (ms) "
        "| stock CPU ms/req | native CPU ms/req | efficiency ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in SCENARIOS:
        s, n = stock[scenario], native[scenario]
        lines.append(
            f"| {scenario} | {s['rps']:.1f} | {n['rps']:.1f} | {s['p50']:.1f} / {s['p99']:.1f} "
            f"| {n['p50']:.2f} / {n['p99']:.2f} | {s['cpu_ms']:.2f} | {n['cpu_ms']:.3f} "
            f"| {s['cpu_ms'] / n['cpu_ms']:.1f}x |"
        )
    lines += [
        "",
        "A write (an entity applied by another process) visible on every replica's cached "
        "Get after: stock " + ", ".join(fmt_lag(x) for x in stock["visible"])
        + "; native " + ", ".join(fmt_lag(x) for x in native["visible"]) + ".",
        "",
    ]
    if "enforced" in native:
        lines += [
            "A changed permission (the probe permission revoked, then granted again, by "
            "another process) enforced on every replica's cached Get after: stock "
            + ", ".join(fmt_lag(x) for x in stock["enforced"]) + "; native "
            + ", ".join(fmt_lag(x) for x in native["enforced"]) + ".",
            "",
        ]
    path = ROOT / "benchmarks" / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    section = "\n".join(lines)
    here = re.escape(title) + r"\n"
    if re.search("^" + here, old, flags=re.M):
        new = re.sub("^" + here + r".*?(?=^## |\Z)", section + "\n", old, flags=re.S | re.M)
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--views", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--ttl", type=int, default=600)
    ap.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    ap.add_argument("--pgbouncer", action="store_true",
                    help="replicas and writer through PgBouncer (transaction mode)")
    ap.add_argument("--standby", action="store_true",
                    help="replicas read from the hot standby (read_path)")
    ap.add_argument("--tls", action="store_true", help="replicas serve TLS (--key/--cert)")
    ap.add_argument("--oidc", action="store_true",
                    help="and auth: type: oidc against a local provider (needs --tls)")
    args = ap.parse_args()
    if args.oidc and not args.tls:
        ap.error("--oidc is measured with --tls (the secure fleet)")
    name, url = create_database()
    workdir = tempfile.mkdtemp(prefix="fsr-fleet-")
    security = Security(workdir, args.tls, args.oidc)
    try:
        code = POPULATE.format(tests=str(ROOT / "tests"), url=url, project=PROJECT, views=args.views,
                               permissions=args.oidc)
        # -c children run in workdir: the source tree would shadow the
        # installed package (it has no built extension).
        subprocess.run([sys.executable, "-c", code], check=True, env=env_for("stock"), cwd=workdir)
        # The native schema extras (change log) on the stock-made registry.
        subprocess.run([sys.executable, "-c", f"from feast_sqlreg._sqlregistry import Store; "
                        f"s = Store({url!r}); s.create_schema(); s.install_change_log()"],
                       check=True, cwd=workdir)
        stock = run_mode("stock", url, args, workdir, security)
        native = run_mode("native", url, args, workdir, security)
    finally:
        security.close()
        drop_database(name)
        shutil.rmtree(workdir, ignore_errors=True)
    if not args.no_write:
        write_results(args, stock, native)


if __name__ == "__main__":
    main()
