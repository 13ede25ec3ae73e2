"""python -m feast_sqlreg status: which registry Feast uses here, and why.
python -m feast_sqlreg doctor: what in the registry database or its set-up
needs fixing, each finding with its fix; exit status 1 when one is a
problem.
python -m feast_sqlreg internals: the Feast and typeguard internals
feast_sqlreg relies on, what changed in the installed versions, and their
fingerprint table (feast_sqlreg._internals.FINGERPRINTS) to paste back."""

import argparse
import os
import sys


def status(repo: str) -> int:
    import feast_sqlreg_hook

    disabled = not feast_sqlreg_hook._enabled()
    hooked = feast_sqlreg_hook._Finder in sys.meta_path
    import feast.infra.registry.sql as sql

    from feast_sqlreg import _install

    native = sql.SqlRegistry.__module__.startswith("feast_sqlreg")
    print(f"feast_sqlreg: {_version()}")
    try:
        from feast_sqlreg import _sqlregistry

        print(f"native core:  loaded (backends: {_sqlregistry.backends}; "
              f"SQLite {_sqlregistry.sqlite_version})")
    except ImportError as e:
        print(f"native core:  NOT loaded ({e})")
    if disabled:
        why = "FEAST_SQLREG_DISABLE is set"
    elif not hooked:
        why = "the start-up hook is not installed (feast_sqlreg.pth missing from site-packages?)"
    else:
        why = _install.status["reason"]
    print(f"registry_type sql -> {'native' if native else 'stock'} "
          f"({sql.SqlRegistry.__module__}.{sql.SqlRegistry.__qualname__}): {why}")

    yaml = os.path.join(repo, "feature_store.yaml")
    if not os.path.exists(yaml):
        print(f"repository:   no feature_store.yaml in {os.path.abspath(repo)}")
        return 0
    from feast.repo_config import load_repo_config
    from pathlib import Path

    config = load_repo_config(Path(repo), Path(yaml))
    reg = config.registry
    print(f"repository:   {os.path.abspath(repo)} (project {config.project})")
    if getattr(reg, "registry_type", None) != "sql":
        print(f"registry:     registry_type {reg.registry_type!r}: feast_sqlreg is not involved")
        return 0
    from feast_sqlreg.errors import DatabaseError, OperationalError

    try:
        # The store NativeSqlRegistry opens: connect_args, pool options;
        # SQLite files are opened, never created, by a status check.
        store = _install.open_store(reg.model_copy(update={
            "path": _existing_only(reg.path), "read_path": _existing_only(reg.read_path)}))
        print(f"registry:     {store.dialect} at {store.url} "
              f"-> {'native' if native else 'stock'} registry")
        missing = set(store.missing_tables(False))
        if reg.read_path:
            missing |= set(store.missing_tables(True))
    except DatabaseError as e:
        missing_file = _missing_sqlite_file(reg.path)
        if missing_file and isinstance(e, OperationalError):  # could not open it
            print(f"connection:   no database file yet at {missing_file} (feast apply creates it)")
            return 0
        print(f"connection:   FAILED: {type(e).__name__}: {e}")
        print(f"{type(e).__module__}.{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    schema = f"missing tables {', '.join(sorted(missing))}" if missing else "complete"
    print(f"connection:   ok; schema {schema}")
    return 0


def _sqlite_file(url):
    """The file a sqlite URL names (SQLAlchemy's split: sqlite:///relative,
    sqlite:////absolute), or None for another URL or an in-memory one."""
    if not url or not url.split("://", 1)[0].startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def _existing_only(url):
    """url, opening a SQLite file read-write without creating it (SQLite's
    mode=rw), unless the URL chooses a mode itself."""
    if _sqlite_file(url) is None or "mode=" in url.split("?", 1)[-1]:
        return url
    return url + ("&" if "?" in url else "?") + "mode=rw"


def _missing_sqlite_file(url):
    path = _sqlite_file(url)
    return os.path.abspath(path) if path is not None and not os.path.exists(path) else None


def internals(feast_roots) -> int:
    """Prints what changed in the installed Feast/typeguard internals
    feast_sqlreg relies on, then FINGERPRINTS for the installed versions and
    for each (version, unpacked Feast wheel) given."""
    from feast_sqlreg import _internals

    installed = _internals.versions()
    current = _internals.fingerprints()
    print("# installed: " + ", ".join(f"{p} {v}" for p, v in installed.items()))
    problems = _internals.changes(current) + _internals.missing()
    for line in problems:
        print(f"# CHANGED: {line}")
    if not problems:
        print("# nothing changed since the checked versions")
    snapshots = []
    for version, root in feast_roots:
        snapshots.append((dict(installed, feast=version), _internals.fingerprints({"feast": root})))
    snapshots.append((installed, current))
    print(_internals.table(snapshots))
    return 1 if problems else 0


def doctor(repo: str, url: str, read_url: str, fleet: int) -> int:
    from feast_sqlreg import _doctor

    if url:
        from feast.infra.registry.sql import SqlRegistryConfig

        config = SqlRegistryConfig(registry_type="sql", path=url, read_path=read_url or None)
    else:
        yaml = os.path.join(repo, "feature_store.yaml")
        if not os.path.exists(yaml):
            print(f"feast_sqlreg doctor: no feature_store.yaml in {os.path.abspath(repo)} "
                  f"(or give --url)", file=sys.stderr)
            return 2
        from pathlib import Path

        from feast.repo_config import load_repo_config

        config = load_repo_config(Path(repo), Path(yaml)).registry
        if getattr(config, "registry_type", None) != "sql":
            print(f"feast_sqlreg doctor: registry_type is {config.registry_type!r}, not sql",
                  file=sys.stderr)
            return 2
    # A check changes nothing: a SQLite file that is not there is a
    # finding, not a new empty database.
    for missing in (_missing_sqlite_file(config.path), _missing_sqlite_file(config.read_path)):
        if missing:
            finding = _doctor.Finding(
                _doctor.PROBLEM, "database", f"no database file at {missing}",
                "run `feast apply` (it creates the file and the registry's tables), or point "
                "path/read_path at the registry's file")
            return _doctor.report([finding], f"sqlite at {missing}", sys.stdout)
    return _doctor.run(config, fleet, sys.stdout)


def _version():
    from feast_sqlreg import __version__

    return __version__


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m feast_sqlreg", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="say which registry Feast uses here, and why")
    st.add_argument("--chdir", "-c", default=".", help="the feature repository (default: .)")
    it = sub.add_parser(
        "internals",
        help="check the Feast/typeguard internals feast_sqlreg relies on; print their fingerprints",
    )
    it.add_argument(
        "--feast-root", nargs=2, action="append", default=[], metavar=("VERSION", "DIR"),
        help="also fingerprint Feast VERSION unpacked in DIR (DIR/feast/...), e.g. a wheel",
    )
    dr = sub.add_parser("doctor", help="check the registry database and its set-up; "
                        "each finding with its fix")
    dr.add_argument("--chdir", "-c", default=".", help="the feature repository (default: .)")
    dr.add_argument("--url", default="", help="the registry URL, instead of a repository's")
    dr.add_argument("--read-url", default="", help="with --url: the read_path URL")
    dr.add_argument("--fleet", type=int, default=1, metavar="N",
                    help="registry processes sharing the database (replicas, jobs; default 1)")
    args = ap.parse_args(argv)
    if args.command == "doctor":
        if args.fleet < 1:
            ap.error("--fleet must be at least 1")
        return doctor(args.chdir, args.url, args.read_url, args.fleet)
    if args.command == "internals":
        return internals(args.feast_root)
    return status(args.chdir)


if __name__ == "__main__":
    sys.exit(main())
