"""The Feast and typeguard internals feast_sqlreg relies on
(feast_sqlreg._internals) are as they were in the checked versions.

When test_internals_unchanged fails after a Feast or typeguard upgrade, each
line says what changed and what in feast_sqlreg to re-check; once re-checked
(and fixed), `python -m feast_sqlreg internals` prints the table to paste
into feast_sqlreg/_internals.py (FINGERPRINTS, CHECKED).
"""

import os
import re
import subprocess
import sys

import pytest

from feast_sqlreg import _internals

START_SERVER = "feast.registry_server:start_server"
LAST = _internals.CHECKED["feast"][-1]


def test_internals_unchanged():
    problems = _internals.changes() + _internals.missing()
    assert not problems, (
        f"Feast/typeguard internals changed (installed: {_internals.versions()}, "
        f"checked: {_internals.CHECKED}):\n" + "\n".join(problems)
    )


def test_installed_versions_are_checked_ones():
    """A version not in CHECKED may still pass the fingerprints; say so."""
    for package, version in _internals.versions().items():
        if version not in _internals.CHECKED[package]:
            pytest.skip(f"{package} {version} is not among the checked {_internals.CHECKED[package]}; "
                        "the fingerprints above decide")


def _new(problems, before):
    """The problems not already reported on the installed packages (the
    tests below show the check fails on a change whatever Feast is here)."""
    return [p for p in problems if p not in before]


def test_a_changed_fingerprint_fails(monkeypatch):
    before = _internals.changes()
    table = dict(_internals.FINGERPRINTS)
    table[START_SERVER] = {LAST: "0000000000000000"}
    monkeypatch.setattr(_internals, "FINGERPRINTS", table)
    problems = _new(_internals.changes(), before)
    assert problems == [
        f"feast.registry_server.start_server changed since feast {LAST}: "
        "re-check feast_sqlreg.server.start_server (a fork of it)"
    ]


def test_a_changed_source_fails(tmp_path):
    """An edit of start_server's body in Feast's source changes its
    fingerprint, and nothing else's."""
    import feast.registry_server

    with open(feast.registry_server.__file__, encoding="utf-8") as f:
        source = f.read()
    edited, n = re.subn(r"(\ndef start_server\([^)]*\)[^:]*:\n)", r"\1    pass\n", source, count=1)
    assert n == 1
    (tmp_path / "feast").mkdir()
    (tmp_path / "feast" / "registry_server.py").write_text(edited, encoding="utf-8")
    mine = _internals.fingerprints({"feast": str(tmp_path)})
    theirs = _internals.fingerprints()
    assert mine[START_SERVER][0] != theirs[START_SERVER][0]
    for key in ("feast.registry_server:_grpc_interceptors", "feast.registry_server:RegistryServer.Proto"):
        assert mine[key] == theirs[key]
    current = dict(theirs)
    current[START_SERVER] = mine[START_SERVER]
    assert _new(_internals.changes(current), _internals.changes(theirs)) == [
        f"feast.registry_server.start_server changed since feast {LAST}: "
        "re-check feast_sqlreg.server.start_server (a fork of it)"
    ]


def test_new_and_gone_definitions_fail(monkeypatch):
    before = _internals.changes()
    table = dict(_internals.FINGERPRINTS)
    del table["feast.infra.registry.sql:SqlRegistry.apply_materialization"]
    table["feast.registry_server:RegistryServer.GetEntity"] = {LAST: "0000000000000000"}
    monkeypatch.setattr(_internals, "FINGERPRINTS", table)
    current = _internals.fingerprints()
    current["feast.registry_server:RegistryServer.GetEntity"] = (
        None, current["feast.registry_server:RegistryServer.GetEntity"][1])
    problems = _new(_internals.changes(current), before)
    assert problems == [
        f"feast.infra.registry.sql.SqlRegistry.apply_materialization is new since feast {LAST}: "
        "re-check feast_sqlreg.registry.NativeSqlRegistry.apply_materialization (stands in for "
        "it: parity with stock) (then add it to FINGERPRINTS)",
        f"feast.registry_server.RegistryServer.GetEntity is gone since feast {LAST}: re-check "
        "feast_sqlreg.server.NativeRegistryServer.GetEntity (answers as this does)",
    ]


def test_a_missing_private_attribute_fails(monkeypatch):
    import feast.registry_server
    from typeguard import _suppression

    before = _internals.missing()
    monkeypatch.delattr(feast.registry_server, "_grpc_interceptors")
    monkeypatch.delattr(_suppression, "type_checks_suppress_lock")
    monkeypatch.setattr(_internals, "REQUIRED", _internals.REQUIRED + (
        ("feast", "feast.infra.registry.caching_registry", "CachingRegistry.self.no_such_attribute"),
    ))
    assert _new(_internals.missing(), before) == [
        "feast.registry_server._grpc_interceptors is missing",
        "typeguard._suppression.type_checks_suppress_lock is missing",
        "feast.infra.registry.caching_registry.CachingRegistry.self.no_such_attribute: "
        "no method of CachingRegistry sets it any more",
    ]


def test_every_override_is_fingerprinted():
    """What NativeSqlRegistry and NativeRegistryServer override of Feast's
    classes is in the table (a new override must be added to it)."""
    from feast.infra.registry.caching_registry import CachingRegistry
    from feast.infra.registry.sql import StockSqlRegistry
    from feast.registry_server import StockRegistryServer

    from feast_sqlreg.registry import NativeSqlRegistry
    from feast_sqlreg.server import NativeRegistryServer

    keys = set(_internals.FINGERPRINTS)
    for stock, name in ((StockSqlRegistry, "feast.infra.registry.sql:SqlRegistry"),
                        (CachingRegistry, "feast.infra.registry.caching_registry:CachingRegistry")):
        for attr, value in vars(NativeSqlRegistry).items():
            if callable(getattr(stock, attr, None)) and attr in vars(stock):
                assert f"{name}.{attr}" in keys, attr
    overridden = {a for a in vars(NativeRegistryServer)
                  if a in vars(StockRegistryServer) and callable(vars(NativeRegistryServer)[a])}
    assert overridden <= set(_internals.SERVER_OVERRIDES)


# Identifiers of Feast's and typeguard's internals that only _internals
# uses (in code: docstrings and comments may name them).
_PRIVATE = {
    "cached_registry_proto", "cached_registry_proto_created", "registry_refresh_thread",
    "_refresh_cached_registry_if_necessary", "_utc_now", "version_utils",
    "_schema_or_udf_changed", "_ensure_feature_view_name_is_unique",
    "_suppression", "type_checks_suppressed", "type_checks_suppress_lock",
    "_sync_protected_project_tag", "_grpc_interceptors", "stock_start_server",
    "RegistryServer_pb2_grpc", "apply_pagination_and_sorting", "registry_cmd", "cli_check_repo",
    "StockSqlRegistry", "StockRegistryServer",
    "_PERMISSION_TYPES", "_DATA_SOURCE_OPTIONS", "_normalize_tags", "_normalize_name_patterns",
    "get_type_class_from_permission_type", "get_data_source_class_from_type",
}


def test_internals_used_only_in_internals():
    import io
    import tokenize

    import feast_sqlreg

    folder = os.path.dirname(feast_sqlreg.__file__)
    found = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name == "_internals.py":
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            source = f.read()
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type in (tokenize.NAME, tokenize.OP)]
        for i, token in enumerate(tokens):
            # _internals.<helper> may share a name with what it wraps.
            ours = i >= 2 and tokens[i - 1].string == "." and tokens[i - 2].string == "_internals"
            if token.type == tokenize.NAME and token.string in _PRIVATE and not ours:
                found.append(f"{name}:{token.start[0]}: {token.line.strip()}")
    assert not found, "Feast/typeguard internals outside feast_sqlreg/_internals.py:\n" + "\n".join(found)


def test_cli_prints_the_table():
    """python -m feast_sqlreg internals: the check's outcome (exit status
    1 and the problems when there are any) and the installed table."""
    problems = _internals.changes() + _internals.missing()
    out = subprocess.run(
        [sys.executable, "-m", "feast_sqlreg", "internals"],
        capture_output=True, text=True, timeout=120, cwd=os.path.dirname(__file__) or ".",
    )
    assert out.returncode == (1 if problems else 0), out.stdout + out.stderr
    for problem in problems:
        assert f"# CHANGED: {problem}" in out.stdout
    if not problems:
        assert "# nothing changed since the checked versions" in out.stdout
    body = out.stdout[out.stdout.index("FINGERPRINTS"):]
    namespace = {}
    exec(body, namespace)
    printed = namespace["FINGERPRINTS"]
    installed = _internals.versions()
    assert set(printed) == set(_internals.fingerprints())
    for key, digests in _internals.FINGERPRINTS.items():
        package = key.split(":", 1)[0].split(".", 1)[0]
        mine = printed[key][installed[package]]
        assert (mine in digests.values()) == (not any(p.startswith(_internals.describe(key) + " ")
                                                      for p in problems)), key
