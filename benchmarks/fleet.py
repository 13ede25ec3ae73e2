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
    for line in sys.stdin:
        reg.apply_entity(o.entity(line.strip()), {project!r})
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


class Fleet:
    """N `feast serve_registry` replicas of one repository."""

    def __init__(self, mode, url, replicas, ttl, workdir, no_prepare=False, read_path=None):
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
            "entity_key_serialization_version: 3\n"
        )
        self.ports = [free_port() for _ in range(replicas)]
        feast = str(Path(sys.executable).parent / "feast")
        self.procs = [
            subprocess.Popen(
                [feast, "serve_registry", "--port", str(port)],
                cwd=self.repo,
                env=env_for(mode),
                stdout=subprocess.DEVNULL,
                stderr=open(self.repo / f"replica{port}.log", "w"),
                start_new_session=True,
            )
            for port in self.ports
        ]
        self.channels = [grpc.insecure_channel(f"127.0.0.1:{p}") for p in self.ports]
        self.stubs = [pb_grpc.RegistryServerStub(c) for c in self.channels]
        for ch in self.channels:
            grpc.channel_ready_future(ch).result(timeout=120)
        # Warm every replica's cache before measuring.
        for stub in self.stubs:
            stub.ListFeatureViews(pb.ListFeatureViewsRequest(project=PROJECT, allow_cache=True))

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
    "Get, cached": lambda s, i: s.GetFeatureView(
        pb.GetFeatureViewRequest(name=f"fv_{i % 200:04d}", project=PROJECT, allow_cache=True)
    ),
    "List, cached": lambda s, i: s.ListFeatureViews(
        pb.ListFeatureViewsRequest(project=PROJECT, allow_cache=True)
    ),
    "Get, uncached": lambda s, i: s.GetFeatureView(
        pb.GetFeatureViewRequest(name=f"fv_{i % 200:04d}", project=PROJECT, allow_cache=False)
    ),
    "List, uncached": lambda s, i: s.ListFeatureViews(
        pb.ListFeatureViewsRequest(project=PROJECT, allow_cache=False)
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
            call(stub, i)
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


def visibility(fleet, writer, rounds=5):
    """Seconds from a write's commit until every replica's cached Get finds
    it, per round (None: not within VISIBLE_WITHIN)."""
    lags = []
    for _ in range(rounds):
        name = f"probe_{uuid.uuid4().hex[:8]}"
        writer.stdin.write(name + "\n")
        writer.stdin.flush()
        assert writer.stdout.readline().startswith("ok")
        t0 = time.monotonic()
        pending = set(range(len(fleet.stubs)))
        while pending and time.monotonic() - t0 < VISIBLE_WITHIN:
            for r in list(pending):
                try:
                    fleet.stubs[r].GetEntity(
                        pb.GetEntityRequest(name=name, project=PROJECT, allow_cache=True)
                    )
                    pending.discard(r)
                except grpc.RpcError:
                    pass
            time.sleep(0.01)
        lags.append(None if pending else time.monotonic() - t0)
    return lags


def run_mode(mode, url, args, workdir):
    if args.pgbouncer:
        url = url.replace(":5432/", f":{PGBOUNCER_PORT}/")
    kwargs = {"connect_args": {"prepare_threshold": None}} if args.pgbouncer else {}
    read_path = url.replace(":5432/", f":{STANDBY_PORT}/") if args.standby else None
    fleet = Fleet(mode, url, args.replicas, args.ttl, workdir, no_prepare=args.pgbouncer,
                  read_path=read_path)
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
        code = WRITE.format(tests=str(ROOT / "tests"), url=url, project=PROJECT, kwargs=kwargs)
        writer = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env_for(mode),
                                  cwd=workdir)
        try:
            results["visible"] = visibility(fleet, writer)
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
             else "## Fleet, reading a hot standby" if args.standby else "## Fleet")
    pooler = (" The replicas and the writer reach PostgreSQL through PgBouncer 1.18 in "
              "transaction mode (default_pool_size 4), prepare_threshold: null for both."
              if args.pgbouncer else "")
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
    args = ap.parse_args()
    name, url = create_database()
    workdir = tempfile.mkdtemp(prefix="fsr-fleet-")
    try:
        code = POPULATE.format(tests=str(ROOT / "tests"), url=url, project=PROJECT, views=args.views)
        # -c children run in workdir: the source tree would shadow the
        # installed package (it has no built extension).
        subprocess.run([sys.executable, "-c", code], check=True, env=env_for("stock"), cwd=workdir)
        # The native schema extras (change log) on the stock-made registry.
        subprocess.run([sys.executable, "-c", f"from feast_sqlreg._sqlregistry import Store; "
                        f"s = Store({url!r}); s.create_schema(); s.install_change_log()"],
                       check=True, cwd=workdir)
        stock = run_mode("stock", url, args, workdir)
        native = run_mode("native", url, args, workdir)
    finally:
        drop_database(name)
        shutil.rmtree(workdir, ignore_errors=True)
    if not args.no_write:
        write_results(args, stock, native)


if __name__ == "__main__":
    main()
