"""PostgreSQL failover: a primary and its synchronous hot standby (private
servers, faultdb.PrivatePostgres), writers whose URL names both
(?host=primary&host=standby&target_session_attrs=read-write, libpq's
multi-host form as SQLAlchemy spells it), the primary killed under them
and the standby promoted, as Patroni would.

What must hold: every acknowledged write is on the new primary; a caller
sees no error but one that says the outcome of its write is unknown (the
connection went at COMMIT); calls succeed again within 5 s of the
promotion; no writer hangs."""

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import objects as o
from conftest import BACKENDS, config
from faultdb import PrivatePostgres, check_writer_logs
from feast_sqlreg.registry import NativeSqlRegistry

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS,
                                reason="this build has no PostgreSQL backend")

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def interval(i):
    return BASE + timedelta(hours=i), BASE + timedelta(hours=i + 1)


@pytest.fixture
def pair():
    primary = PrivatePostgres()
    standby = None
    try:
        primary.start()
        standby = PrivatePostgres(standby_of=primary)
        standby.start()
        import psycopg

        with psycopg.connect(primary.url(), autocommit=True) as conn:
            # Synchronous: a COMMIT returns once the standby has the WAL, so
            # a failover loses no acknowledged commit (Patroni's
            # synchronous_mode).
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 30
            while conn.execute("SELECT count(*) FROM pg_stat_replication "
                               "WHERE sync_state = 'sync'").fetchone()[0] != 1:
                assert time.monotonic() < deadline, "the standby did not become synchronous"
                time.sleep(0.1)
        yield primary, standby
    finally:
        if standby:
            standby.close()
        primary.close()


def test_failover_loses_nothing_and_callers_see_only_outcome_unknown(pair):
    primary, standby = pair
    name = f"fsr_{uuid.uuid4().hex[:12]}"
    primary.new_database(name)
    url = (f"postgresql://postgres@/{name}?host=127.0.0.1:{primary.port}"
           f"&host=127.0.0.1:{standby.port}&target_session_attrs=read-write&connect_timeout=2")
    setup = NativeSqlRegistry(config(url), "proj", None)
    setup.apply_feature_view(o.feature_view(), "proj")
    setup.close()

    stop = threading.Event()
    logs = [[] for _ in range(4)]

    def writer(w):
        reg = NativeSqlRegistry(config(url), "proj", None)
        try:
            fv = reg.get_feature_view("driver_hourly_stats", "proj")
            i = w * 100000
            while not stop.is_set():
                try:
                    reg.apply_materialization(fv, "proj", *interval(i))
                    logs[w].append((i, True, time.monotonic(), ""))
                except Exception as e:  # reported below
                    logs[w].append((i, False, time.monotonic(), f"{type(e).__name__}: {e}"))
                i += 1
        finally:
            reg.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        primary.stop()  # pg_ctl stop -m immediate: the primary dies
        time.sleep(1)
        standby.promote()
        promoted_at = time.monotonic()
        time.sleep(6)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a writer hung"

    after = NativeSqlRegistry(config(standby.url(name)), "proj", None)
    stored = set(after.get_feature_view("driver_hourly_stats", "proj",
                                        allow_cache=False).materialization_intervals)
    after.close()
    check_writer_logs(logs, stored, promoted_at, "the promotion", interval)
