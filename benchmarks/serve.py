"""The serving path, native vs stock, side by side in one run: cached gets,
and `feast serve` answering /get-online-features by feature service.

    python benchmarks/serve.py [--backend sqlite|postgresql|mysql] [--requests N]
                               [--no-results]

A repository of 10 feature views x 4 features (one entity, one parquet
source) in one feature service, `registry_type: sql` on the chosen
database kind, a SQLite online store holding materialized rows. Then:

1. cached gets, per call: get_feature_service / get_feature_view /
   get_entity with allow_cache=True, the stock SqlRegistry (its Feast
   CachingRegistry path: from_proto per call, typeguard's checks on, as
   stock runs) and NativeSqlRegistry on the same database;
2. in process, FeatureStore.get_online_features(features=...) with the
   service resolved once (one FeatureService object for every call) and
   with store.get_feature_service(name, allow_cache=True) on every call,
   on a store with each registry;
3. the real `feast serve` (gunicorn, 1 uvicorn worker, not recycled, started with
   FEAST_SQLREG_DISABLE=1 for stock), POST /get-online-features by
   {"feature_service": name} and by {"features": [the same 40 refs]}, the
   nearest HTTP request that resolves no service (its views come from
   Feast's shared get_any_feature_view cache), and by feature service to a
   second server whose FeatureStore.get_feature_service returns the object
   its first call got (serve_resolved.py: the service already resolved).
   Sequential requests over one keep-alive connection; the median of each
   run, the best of --rounds runs taken in turns.

Writes the "## Serving path" section of benchmarks/RESULTS.md (the other
sections are left as they are) unless --no-results.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
warnings.simplefilter("ignore")

import conftest  # noqa: E402  (databases, the stock registry)
import pandas as pd  # noqa: E402
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource  # noqa: E402
from feast.types import Float32  # noqa: E402
from feast.value_type import ValueType  # noqa: E402

from feast_sqlreg.registry import NativeSqlRegistry  # noqa: E402

VIEWS, FEATURES, ROWS = 10, 4, 100
PROJECT = "serve_bench"
SERVICE = "svc"


def make_repo(tmp: Path, backend: str):
    """Two repository folders on the same registry database, online store
    and data (the native and the stock URL spelling of the database)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'registry.db'}"
        urls = (url, url)
    else:
        urls = conftest.Databases(backend, tmp).new()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    data = {"driver_id": list(range(1, ROWS + 1)), "event_timestamp": [now - timedelta(minutes=5)] * ROWS}
    for v in range(VIEWS):
        for f in range(FEATURES):
            data[f"v{v}_f{f}"] = [float(i * 10 + f) for i in range(ROWS)]
    pd.DataFrame(data).to_parquet(tmp / "drivers.parquet")
    repos = {}
    for kind, url in zip(("native", "stock"), urls):
        repo = tmp / kind
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(
            f"project: {PROJECT}\n"
            "provider: local\n"
            "registry:\n"
            "  registry_type: sql\n"
            f"  path: {url}\n"
            "  cache_ttl_seconds: 60\n"
            "online_store:\n"
            "  type: sqlite\n"
            f"  path: {tmp / 'online.db'}\n"
            "offline_store:\n"
            "  type: file\n"
            "entity_key_serialization_version: 3\n"
        )
        repos[kind] = repo
    return repos, urls, now


def definitions(tmp: Path):
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(name="drivers", path=str(tmp / "drivers.parquet"), timestamp_field="event_timestamp")
    views = [
        FeatureView(
            name=f"view_{v}",
            entities=[driver],
            ttl=timedelta(days=1),
            schema=[Field(name=f"v{v}_f{f}", dtype=Float32) for f in range(FEATURES)],
            source=source,
            online=True,
            tags={"team": "serving"},
        )
        for v in range(VIEWS)
    ]
    service = FeatureService(name=SERVICE, features=views, tags={"team": "serving"})
    return driver, source, views, service


def per_call(fn, seconds=1.0, rounds=5) -> float:
    """Seconds per call of fn: the best of rounds rounds of about seconds/rounds."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:
        fn()
        n += 1
    n = max(5, int(n * seconds / rounds / 0.05))
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def cached_gets(native, stock):
    rows = []
    for getter, name in (
        ("get_feature_service", SERVICE),
        ("get_feature_view", "view_0"),
        ("get_entity", "driver"),
    ):
        a = getattr(stock, getter)(name, PROJECT, allow_cache=True)
        b = getattr(native, getter)(name, PROJECT, allow_cache=True)
        assert a == b, getter
        s = per_call(lambda: getattr(stock, getter)(name, PROJECT, allow_cache=True))
        n = per_call(lambda: getattr(native, getter)(name, PROJECT, allow_cache=True))
        rows.append((getter, s, n))
    return rows


def refs():
    return [f"view_{v}:v{v}_f{f}" for v in range(VIEWS) for f in range(FEATURES)]


def entity_rows(n):
    return [{"driver_id": i} for i in range(1, n + 1)]


def in_process(store: FeatureStore, n_rows: int):
    """(seconds per call resolved once, seconds per call resolved per call)."""
    resolved = store.get_feature_service(SERVICE, allow_cache=True)
    rows = entity_rows(n_rows)
    first = store.get_online_features(features=resolved, entity_rows=rows).to_dict()
    assert first["v9_f3"][0] == 3.0, first
    once = per_call(lambda: store.get_online_features(features=resolved, entity_rows=rows))
    each = per_call(
        lambda: store.get_online_features(
            features=store.get_feature_service(SERVICE, allow_cache=True), entity_rows=rows
        )
    )
    return once, each


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`feast serve` on repo (stock when stock is true), one keep-alive
    HTTP connection to it."""

    def __init__(self, repo: Path, stock: bool, log: Path, resolved: bool = False):
        self.port = free_port()
        env = dict(os.environ)
        env.pop("FEAST_SQLREG_DISABLE", None)
        if stock:
            env["FEAST_SQLREG_DISABLE"] = "1"
        if resolved:  # every feature service resolved once (serve_resolved.py)
            feast = [sys.executable, str(Path(__file__).parent / "serve_resolved.py")]
        else:
            feast = [str(Path(sys.executable).parent / "feast")]
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            feast + ["-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(self.port),
             "--no-access-log", "--workers", "1",
             # no worker recycling every ~1,000 requests (a restarted worker
             # is a cold process, and drops the keep-alive connection)
             "--max-requests", "0", "--max-requests-jitter", "0"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.time() + 120
        while True:
            try:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request("GET", "/health")
                if self.conn.getresponse().read() is not None:
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"feast serve did not start; see {log}")
                time.sleep(0.3)

    def post(self, body: bytes) -> dict:
        self.conn.request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
        return json.loads(data)

    def median(self, body: bytes, requests: int) -> float:
        for _ in range(max(20, requests // 10)):
            self.post(body)
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            self.post(body)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def registry_kind(self) -> str:
        """"native" when the serving worker (a child of gunicorn's master)
        has the native core mapped, else "stock"."""
        pids = [self.proc.pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    pids.append(int(entry))
        for pid in pids:
            try:
                if "_sqlregistry" in Path(f"/proc/{pid}/maps").read_text():
                    return "native"
            except OSError:
                pass
        return "stock"

    def close(self):
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def http_bench(repos, requests: int, n_rows: int, tmp: Path, rounds: int):
    """{kind: (by service, by service resolved once, by list, registry seen)}:
    median seconds per request; a plain server and one with the service
    resolved once (serve_resolved.py) run side by side, measured in turns."""
    ids = list(range(1, n_rows + 1))
    by_service = json.dumps({"feature_service": SERVICE, "entities": {"driver_id": ids}}).encode()
    by_refs = json.dumps({"features": refs(), "entities": {"driver_id": ids}}).encode()
    out = {}
    for kind in ("stock", "native"):
        repo = repos[kind]
        plain = Server(repo, kind == "stock", tmp / f"serve-{kind}-{n_rows}.log")
        try:
            resolved = Server(repo, kind == "stock", tmp / f"serve-{kind}-{n_rows}-resolved.log", True)
        except BaseException:
            plain.close()
            raise
        try:
            a, b, c = plain.post(by_service), plain.post(by_refs), resolved.post(by_service)
            seen = plain.registry_kind()
            assert resolved.registry_kind() == seen
            # (feature order in an answer follows a set's: hash seeds differ per server)
            answers = [dict(zip(r["metadata"]["feature_names"], r["results"])) for r in (a, b, c)]
            assert answers[0] == answers[1] == answers[2], "every request answers alike"
            values = answers[0]
            assert values["v9_f3"]["values"] == [3.0 + 10 * i for i in range(n_rows)], values
            runs = {"service": [], "resolved": [], "list": []}
            for _ in range(rounds):  # in turns, so drift hits all three alike
                runs["service"].append(plain.median(by_service, requests))
                runs["resolved"].append(resolved.median(by_service, requests))
                runs["list"].append(plain.median(by_refs, requests))
            out[kind] = (min(runs["service"]), min(runs["resolved"]), min(runs["list"]), seen)
        finally:
            plain.close()
            resolved.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql", "mysql"))
    ap.add_argument("--requests", type=int, default=200, help="requests per timed run")
    ap.add_argument("--rounds", type=int, default=5, help="timed runs of each request")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="feast_sqlreg_serve_"))
    repos, urls, now = make_repo(tmp, args.backend)
    store = FeatureStore(repo_path=str(repos["native"]))
    assert isinstance(store.registry, NativeSqlRegistry)
    driver, source, views, service = definitions(tmp)
    store.apply([driver, source, *views, service])
    store.materialize(now - timedelta(days=1), now)

    stock_reg = conftest.StockSqlRegistry(conftest.config(urls[1]), PROJECT, None)
    native_reg = NativeSqlRegistry(conftest.config(urls[0]), PROJECT, None)
    gets = cached_gets(native_reg, stock_reg)

    stock_store = FeatureStore(repo_path=str(repos["stock"]))
    stock_store._registry = stock_reg
    native_store = FeatureStore(repo_path=str(repos["native"]))
    native_store._registry = native_reg
    procs = {}
    for n_rows in (1, 10):
        procs[n_rows] = {"stock": in_process(stock_store, n_rows), "native": in_process(native_store, n_rows)}
    served = {n_rows: http_bench(repos, args.requests, n_rows, tmp, args.rounds) for n_rows in (1, 10)}
    native_reg.close()

    text = report(args.backend, gets, procs, served, args.requests, args.rounds)
    print(text)
    if not args.no_results:
        write_section(text)


def _ms(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 0.01 else f"{s * 1e3:.2f} ms"


def report(backend, gets, procs, served, requests, rounds) -> str:
    lines = [
        "## Serving path",
        "",
        f"`make bench-serve` (`benchmarks/serve.py --backend {backend}`): 10 feature views x 4",
        "features in one feature service, a SQLite online store with materialized rows, the",
        f"registry on {backend}; stock and native in the same run. Cached gets per call",
        "(allow_cache=True; stock builds each answer with from_proto, typeguard's checks on;",
        "native copies a template made once per stored message):",
        "",
        "| cached get | stock | native | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for getter, s, n in gets:
        lines.append(f"| `{getter}` | {_ms(s)} | {_ms(n)} | {s / n:.1f}x |")
    lines += [
        "",
        "In process, `FeatureStore.get_online_features(features=...)`: the service resolved",
        "once (one FeatureService object for every call) against",
        "`store.get_feature_service(name, allow_cache=True)` on every call:",
        "",
        "| entity rows | registry | resolved once | resolved per call | per call / once |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n_rows, by_kind in procs.items():
        for kind in ("stock", "native"):
            once, each = by_kind[kind]
            lines.append(f"| {n_rows} | {kind} | {_ms(once)} | {_ms(each)} | {each / once:.2f}x |")
    lines += [
        "",
        f"`feast serve` (gunicorn, 1 uvicorn worker), POST /get-online-features, median of",
        f"{requests} sequential requests on one keep-alive connection (the best of {rounds} runs",
        "taken in turns). By feature service; the same request to a server whose",
        "FeatureStore.get_feature_service hands out the object its first call got",
        "(`benchmarks/serve_resolved.py`: the service already resolved, everything else",
        "Feast's); and the same 40 features named in the request instead (no service; the",
        "views from Feast's shared get_any_feature_view cache, no threadpool hop):",
        "",
        "| entity rows | registry | by service | by service, resolved once | by feature list | service / resolved |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n_rows, by_kind in served.items():
        for kind in ("stock", "native"):
            svc, res, lst, seen = by_kind[kind]
            assert seen == kind, f"the {kind} server ran the {seen} registry"
            lines.append(
                f"| {n_rows} | {kind} | {_ms(svc)} | {_ms(res)} | {_ms(lst)} | {svc / res:.2f}x |"
            )
    lines += [
        "",
        "Medians move by 10-20% between runs on a loaded 2-core machine: compare the rows",
        "of one run.",
        "",
    ]
    for n_rows, by_kind in served.items():
        s, n = by_kind["stock"][0], by_kind["native"][0]
        verdict = "within" if n / by_kind["native"][1] <= 1.2 else "NOT within"
        lines.append(
            f"By feature service, {n_rows} entity row{'s' if n_rows > 1 else ''}: stock {_ms(s)}, "
            f"native {_ms(n)} ({s / n:.2f}x faster); native is {verdict} 1.2x of the resolved "
            "service."
        )
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(r"^## Serving path\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda m: text + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


if __name__ == "__main__":
    main()
