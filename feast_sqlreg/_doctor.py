"""python -m feast_sqlreg doctor: what in a registry database and its
set-up would make the native registry fail, slow down or lose freshness,
each finding with its fix.

The checks read the database through the registry's own store (the same
URLs, connect_args and pool options as NativeSqlRegistry) and change
nothing: the schema, the change log (its table and every trigger), BLOB
widths and name collations (MySQL/MariaDB), the server's bounds against
the fleet's pools (connections; MySQL's prepared statements), a pooler
between the registry and PostgreSQL with prepared statements on, and the
replica that read_path names (is it one, does it replay, how far behind).
"""

from typing import Any, Dict, List, NamedTuple, Optional
from urllib.parse import parse_qs, urlsplit

from feast_sqlreg import errors

OK, WARNING, PROBLEM = "ok", "warning", "PROBLEM"

# Prepared statements one MySQL connection keeps (db_mysql.c's cache).
STATEMENTS_PER_CONNECTION = 60
# SQLAlchemy's defaults, which the native pool takes too.
POOL_SIZE, MAX_OVERFLOW = 5, 10
# A read_path replica this far behind fails read-your-writes' 1 s wait.
LAG_PROBLEM_SECONDS = 30.0



def registry_tables() -> List[str]:
    # Imported here: _kinds imports Feast, whose import loads the registry,
    # which imports _kinds.
    from feast_sqlreg._kinds import KINDS

    return sorted({k.table for k in KINDS} | {"feast_metadata", "feature_view_version_history"})


class Finding(NamedTuple):
    level: str  # OK, WARNING or PROBLEM
    check: str
    text: str
    fix: str = ""


def _one(store, sql, primary=True):
    """The first row of sql, as a tuple (Store.inspect gives one-column
    rows as bare values)."""
    rows = store.inspect(sql, primary)
    if not rows:
        return None
    return rows[0] if isinstance(rows[0], tuple) else (rows[0],)


def _names(rows) -> List[str]:
    return sorted(r[0] if isinstance(r, tuple) else r for r in rows)


def check(store, config, fleet: int = 1) -> List[Finding]:
    """The findings for the store NativeSqlRegistry would open for config
    (a SqlRegistryConfig), with `fleet` registry processes sharing the
    database (replicas, materialization jobs)."""
    found: List[Finding] = []
    dialect = store.dialect
    found += _schema(store, config)
    if any(f.level == PROBLEM and f.check == "schema" for f in found):
        return found  # the other checks read tables that are not there
    found += _change_log(store)
    if dialect == "mysql":
        found += _mysql(store, config, fleet)
    elif dialect == "postgresql":
        found += _postgres(store, config, fleet)
    if config.read_path:
        found += _replica(store, dialect)
    return found


def _schema(store, config) -> List[Finding]:
    out = []
    for read, where in ((False, "path"), (True, "read_path")):
        if read and not config.read_path:
            continue
        missing = _names(store.missing_tables(read))
        if missing:
            out.append(Finding(
                PROBLEM, "schema", f"{where}: missing tables {', '.join(missing)}",
                "run `feast apply` (the registry creates its tables when it starts), or "
                "`feast registry create-schema`, as a user that may create tables"))
        else:
            out.append(Finding(OK, "schema", f"{where}: every registry table exists"))
    narrow = store.narrow_blob_columns(False)
    for table, column in narrow:
        out.append(Finding(
            PROBLEM, "blob widths",
            f"{table}.{column} is a BLOB (at most 64 KiB): a larger object cannot be stored",
            f"ALTER TABLE {table} MODIFY {column} LONGBLOB NOT NULL"))
    if store.dialect == "mysql" and not narrow:
        out.append(Finding(OK, "blob widths", "every proto column is a LONGBLOB"))
    return out


def _change_log(store) -> List[Finding]:
    missing = _names(store.missing_change_log())
    if not missing:
        return [Finding(OK, "change log", "feast_sqlreg_changes and every trigger exist")]
    return [Finding(
        PROBLEM, "change log",
        f"missing {', '.join(missing)}: other processes' writes reach a cached registry "
        f"only after cache_ttl_seconds",
        "start a native registry once as a user that may create triggers (MySQL/MariaDB: "
        "the TRIGGER privilege; PostgreSQL: owner of the tables); it creates what is missing")]


def _pool_connections(config) -> Optional[int]:
    kwargs = config.sqlalchemy_config_kwargs or {}
    size = kwargs.get("pool_size", POOL_SIZE)
    overflow = kwargs.get("max_overflow", MAX_OVERFLOW)
    if size == 0 or overflow == -1:
        return None  # no bound
    return int(size) + int(overflow)


def _bounds(store, config, fleet, limit, what) -> List[Finding]:
    per = _pool_connections(config)
    if per is None:
        return [Finding(WARNING, "connections",
                        "the pool has no bound (pool_size 0 or max_overflow -1)",
                        f"bound it so that {fleet} processes stay within the server's {what}")]
    pools = 2 if config.read_path else 1
    need = fleet * per * pools
    if need > limit:
        return [Finding(PROBLEM, "connections",
                        f"{fleet} processes x {per} connections x {pools} pool(s) = {need}, "
                        f"above the server's {what} ({limit})",
                        f"raise {what} to at least {need} plus other clients, or lower "
                        f"pool_size / max_overflow in sqlalchemy_config_kwargs")]
    return [Finding(OK, "connections",
                    f"{fleet} processes x {per} connections x {pools} pool(s) = {need}, "
                    f"within {what} ({limit})")]


def _mysql(store, config, fleet) -> List[Finding]:
    out = []
    tables = ", ".join(f"'{t}'" for t in registry_tables())
    folding = store.inspect(
        "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({tables}) "
        "AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME NOT LIKE '%\\_bin' "
        "ORDER BY TABLE_NAME, COLUMN_NAME", True)
    if folding:
        cols = sorted({f"{t}.{c} ({coll})" for t, c, coll in folding})
        tabs = sorted({t for t, _, _ in folding})
        out.append(Finding(
            WARNING, "collation",
            f"names compared case- or accent-insensitively: {', '.join(cols[:6])}"
            + (f" and {len(cols) - 6} more" if len(cols) > 6 else "")
            + "; applying 'Driver' where 'driver' exists is refused with an IntegrityError",
            "ALTER TABLE <table> CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, for "
            f"each of {', '.join(tabs)}"))
    else:
        out.append(Finding(OK, "collation", "every name column has a binary collation"))
    statements, connections = _one(
        store, "SELECT @@GLOBAL.max_prepared_stmt_count, @@GLOBAL.max_connections")
    statements, connections = int(statements), int(connections)
    out += _bounds(store, config, fleet, connections, "max_connections")
    per = _pool_connections(config)
    if per is not None:
        pools = 2 if config.read_path else 1
        need = fleet * per * pools * STATEMENTS_PER_CONNECTION
        if need > statements:
            out.append(Finding(
                PROBLEM, "prepared statements",
                f"{fleet} processes x {per * pools} connections x about "
                f"{STATEMENTS_PER_CONNECTION} statements = {need}, above the server's "
                f"max_prepared_stmt_count ({statements}): connections that meet the bound give "
                f"back their statements and run slower",
                f"SET GLOBAL max_prepared_stmt_count = {min(need, 1048576)} (and in the "
                f"server's configuration)"))
        else:
            out.append(Finding(OK, "prepared statements",
                               f"{need} at most, within max_prepared_stmt_count ({statements})"))
    wsrep = store.inspect("SHOW GLOBAL STATUS LIKE 'wsrep_%'", True)
    status = {name: value for name, value in wsrep}
    if status.get("wsrep_ready") == "ON":
        size, state = status.get("wsrep_cluster_size"), status.get("wsrep_local_state_comment")
        level = OK if state == "Synced" else PROBLEM
        out.append(Finding(level, "galera",
                           f"a Galera node, {state}, in a cluster of {size}; reads are causal "
                           f"(wsrep_sync_wait)",
                           "" if level == OK else "wait for the node to sync, or name another "
                           "node first in ?host="))
        grants = store.inspect("SHOW GRANTS", True)
        grants = [g if isinstance(g, str) else g[0] for g in grants]
        if any(" ON *.* " in g and ("ALL PRIVILEGES" in g or "RELOAD" in g) for g in grants):
            out.append(Finding(OK, "galera flush", "the user may flush a node's tables (RELOAD)"))
        else:
            out.append(Finding(
                WARNING, "galera flush",
                "the user lacks RELOAD: a node whose table cache kept a registry table with its "
                "triggers unparsed (after a conflict abort) cannot be flushed by the registry, "
                "and writes there fail until someone runs FLUSH TABLES on that node",
                "GRANT RELOAD ON *.* TO the registry's user"))
    return out


def _query_of(url: str) -> Dict[str, List[str]]:
    return parse_qs(urlsplit(url).query)


def _postgres(store, config, fleet) -> List[Finding]:
    out = []
    (connections,) = _one(store, "SELECT current_setting('max_connections')::int")
    out += _bounds(store, config, fleet, int(connections), "max_connections")
    (server_port,) = _one(store, "SELECT inet_server_port()")
    url = config.path
    parts = urlsplit(url)
    try:
        url_port = parts.port
    except ValueError:
        url_port = None
    hosts = _query_of(url).get("host", [])
    connect_args = (config.sqlalchemy_config_kwargs or {}).get("connect_args") or {}
    threshold = _query_of(url).get("prepare_threshold", [connect_args.get("prepare_threshold", 0)])[0]
    prepares = str(threshold) not in ("None", "none", "null", "")
    if not hosts and server_port is not None and url_port and int(server_port) != url_port:
        if prepares:
            out.append(Finding(
                PROBLEM, "pooler",
                f"the URL's port {url_port} is not the server's ({server_port}): a pooler or "
                f"proxy is in between, and the registry prepares statements (prepare_threshold "
                f"{threshold}); a pooler in transaction mode (PgBouncer) fails them",
                "set prepare_threshold: null in sqlalchemy_config_kwargs.connect_args, or "
                "?prepare_threshold=None in the URL (session-mode poolers need nothing)"))
        else:
            out.append(Finding(OK, "pooler",
                               f"a pooler or proxy at port {url_port}, statements unprepared"))
    else:
        out.append(Finding(OK, "pooler", "the registry talks to PostgreSQL itself"))
    return out


def _replica(store, dialect) -> List[Finding]:
    if dialect == "postgresql":
        in_recovery, lag = _one(
            # Replayed all it received: caught up, however long ago the
            # last transaction was (an idle primary writes none).
            store, "SELECT pg_is_in_recovery()::int, CASE WHEN pg_last_wal_receive_lsn() = "
            "pg_last_wal_replay_lsn() THEN '0' ELSE EXTRACT(EPOCH FROM now() - "
            "pg_last_xact_replay_timestamp())::float8::text END", False)
        if not int(in_recovery):
            return [Finding(WARNING, "replica", "read_path is not a standby: reads there do "
                            "not wait for this process's writes",
                            "point read_path at a hot standby of path, or leave it out")]
        return [_lag_finding(None if lag is None else float(lag), "the standby")]
    if dialect == "mysql":
        rows = store.inspect("SHOW SLAVE STATUS", False)
        if not rows:
            return [Finding(WARNING, "replica", "read_path is not a replica (no SHOW SLAVE "
                            "STATUS): reads there do not wait for this process's writes",
                            "point read_path at a replica of path (GTID replication), or "
                            "leave it out")]
        row = rows[0]
        io_running, sql_running, behind = row[10], row[11], row[32]
        if io_running != "Yes" or sql_running != "Yes":
            return [Finding(PROBLEM, "replica",
                            f"replication is stopped (IO {io_running}, SQL {sql_running}): "
                            f"reads after writes go to the primary, and others' writes are "
                            f"not seen there", "START SLAVE on the replica, after the cause "
                            "in SHOW SLAVE STATUS (Last_Error) is fixed")]
        return [_lag_finding(None if behind is None else float(behind), "the replica")]
    return []


def _lag_finding(lag: Optional[float], what: str) -> Finding:
    if lag is None:
        return Finding(OK, "replica", f"read_path is {what}; it has replayed nothing yet, or "
                       f"nothing was written")
    level = PROBLEM if lag > LAG_PROBLEM_SECONDS else OK
    return Finding(level, "replica", f"read_path is {what}, {lag:.1f} s behind",
                   "" if level == OK else
                   f"find why {what} lags (its disk, its network, long queries on it)")


def report(findings: List[Finding], where: str, out) -> int:
    """Prints the findings; 1 when one is a problem, else 0."""
    print(f"feast_sqlreg doctor: {where}", file=out)
    for f in findings:
        print(f"  {f.level:<8} {f.check}: {f.text}", file=out)
        if f.fix and f.level != OK:
            print(f"  {'':<8} fix: {f.fix}", file=out)
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARNING for f in findings)
    print(f"{problems} problem(s), {warnings} warning(s)", file=out)
    return 1 if problems else 0


def run(config: Any, fleet: int, out) -> int:
    from feast_sqlreg.registry import open_store

    try:
        store = open_store(config)
    except errors.DatabaseError as e:
        print(f"feast_sqlreg doctor: cannot open the registry: {type(e).__name__}: {e}", file=out)
        return 1
    try:
        where = f"{store.dialect} at {store.url}"
        try:
            findings = check(store, config, fleet)
        except errors.DatabaseError as e:
            findings = [Finding(PROBLEM, "connection", f"{type(e).__name__}: {e}",
                                "check the URL, the server and the user's privileges")]
        return report(findings, where, out)
    finally:
        store.close()
