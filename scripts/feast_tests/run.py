"""Feast's own SQL registry tests, stock and native side by side.

    python scripts/feast_tests/run.py [--feast-src DIR] [--out build/feast-tests]

Runs, from a Feast source tree matching the installed Feast, against the
installed Feast and feast_sqlreg:

- tests/integration/registration/test_universal_registry.py, its SQL
  registry cases (SQLite, PostgreSQL, MySQL);
- tests/unit/infra/registry/test_sql_registry.py (SQLite);
- tests/integration/registration/test_versioning.py, whose registry
  fixtures are pointed at a SQL registry on each backend in turn (upstream
  runs it on a file registry).

Each runs twice: with FEAST_SQLREG_DISABLE=1 (Feast's stock SqlRegistry) and
without (the native one, through the start-up hook). PostgreSQL and MySQL are
the local servers (FEAST_SQLREG_PG, FEAST_SQLREG_MYSQL) instead of
testcontainers; see feast_sqlreg_upstream.py, the pytest plugin that does it.
Prints pass counts per file and backend, every test whose outcome differs,
and the failures both share; writes the same to OUT/summary.md. Exits 1 when
native fails a test stock passes.

Without --feast-src the tests come from Feast's sdist on PyPI when it
carries them (pip download); Feast's sdists have not so far, and then the
script says so and asks for a checkout. Only sdk/python/tests is copied (to
OUT/tree), so Feast's own sources can never shadow the installed Feast.
"""

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
UNIVERSAL = "tests/integration/registration/test_universal_registry.py"
UNIT = "tests/unit/infra/registry/test_sql_registry.py"
VERSIONING = "tests/integration/registration/test_versioning.py"
BACKENDS = ("sqlite", "postgresql", "mysql")
MODES = ("stock", "native")


def tests_from_sdist(version: str, out: Path) -> Path:
    """sdk/python of Feast's sdist for version, unpacked into out (tests
    only); exits when the sdist carries no tests."""
    sdist_dir = out / "sdist"
    found = sorted(sdist_dir.glob(f"feast-{version}.tar.gz"))
    if not found:
        sdist_dir.mkdir(parents=True, exist_ok=True)
        print(f"fetching the feast {version} sdist from PyPI", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", f"feast=={version}",
             "--no-deps", "--no-binary", ":all:", "-d", str(sdist_dir)],
            check=True,
        )
        found = sorted(sdist_dir.glob(f"feast-{version}.tar.gz"))
    if not found:
        sys.exit(f"no feast-{version}.tar.gz in {sdist_dir}")
    prefix = f"feast-{version}/sdk/python/"
    with tarfile.open(found[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix + "tests/")]
        if not any(m.name == prefix + UNIVERSAL for m in members):
            sys.exit(
                f"The feast {version} sdist on PyPI does not carry Feast's tests "
                f"(no {UNIVERSAL}).\nPass a Feast source tree at v{version}: "
                f"make feast-tests FEAST_SRC=<dir>  (git clone --branch v{version} "
                "https://github.com/feast-dev/feast)"
            )
        unpacked = out / "sdist-src"
        shutil.rmtree(unpacked, ignore_errors=True)
        tar.extractall(unpacked, members=members, filter="data")
    return unpacked / prefix


def python_dir(src: Path) -> Path:
    """sdk/python of a Feast source tree (or the directory itself)."""
    for candidate in (src / "sdk" / "python", src):
        if (candidate / UNIVERSAL).is_file():
            return candidate
    sys.exit(f"{src} is not a Feast source tree: no sdk/python/{UNIVERSAL}")


def describe(src: Path) -> str:
    try:
        tag = subprocess.run(
            ["git", "-C", str(src), "describe", "--tags", "--always"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return f"{src} (git {tag})"
    except (OSError, subprocess.CalledProcessError):
        return str(src)


def runs(versioning: bool):
    """(name, file, pytest arguments, extra environment) of each run."""
    yield ("universal", UNIVERSAL,
           [UNIVERSAL, "--integration", "-k", "pg_registry or mysql_registry or sqlite_registry"], {})
    yield ("unit", UNIT, [UNIT], {})
    if versioning:
        for backend in BACKENDS:
            # --integration: Feast's conftest counts everything under
            # tests/integration/ as an integration test (a keyword of the path).
            yield (f"versioning-{backend}", VERSIONING, [VERSIONING, "--integration"],
                   {"FEAST_SQLREG_UPSTREAM_BACKEND": backend})


def backend_of(file: str, name: str, env: dict) -> str:
    if file == VERSIONING:
        return env["FEAST_SQLREG_UPSTREAM_BACKEND"]
    if file == UNIT:
        return "sqlite"
    param = name.partition("[")[2]
    if param.startswith("pg_"):
        return "postgresql"
    if param.startswith("mysql_"):
        return "mysql"
    if param.startswith("sqlite_"):
        return "sqlite"
    return "?"


def outcomes(xml_path: Path):
    """{(classname, name): (outcome, message)} from a JUnit XML report."""
    result = {}
    if not xml_path.exists():
        return result
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (child.get("message") or "").splitlines()[0][:200] if child.get("message") else ""
                break
        result[(case.get("classname", ""), case.get("name", ""))] = (outcome, message)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feast-src", help="a Feast source tree matching the installed Feast")
    parser.add_argument("--out", default="build/feast-tests", help="work directory")
    parser.add_argument("--no-versioning", action="store_true", help="skip test_versioning.py")
    parser.add_argument("--modes", default=",".join(MODES), help="stock,native")
    args = parser.parse_args()

    version = importlib.metadata.version("feast")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.feast_src:
        src = python_dir(Path(args.feast_src).resolve())
        origin = describe(Path(args.feast_src).resolve())
    else:
        src = tests_from_sdist(version, out)
        origin = f"the feast {version} sdist"
    tree = out / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(src / "tests", tree / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    print(f"Feast's tests from {origin}; installed feast {version}", flush=True)

    results = {}  # (file, backend, test) -> {mode: (outcome, message)}
    (out / "results").mkdir(exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    for mode in args.modes.split(","):
        for name, file, pytest_args, extra in runs(not args.no_versioning):
            if not (tree / file).is_file():
                print(f"  {mode:6} {name}: {file} not in this Feast tree, skipped")
                continue
            env = dict(os.environ)
            env.update(extra)
            env.update(
                IS_TEST="True",
                FEAST_IS_LOCAL_TEST="True",
                FEAST_SQLREG_UPSTREAM_EXPECT=mode,
                PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
            )
            if mode == "stock":
                env["FEAST_SQLREG_DISABLE"] = "1"
            else:
                env.pop("FEAST_SQLREG_DISABLE", None)
            xml = out / "results" / f"{mode}-{name}.xml"
            log = out / "logs" / f"{mode}-{name}.log"
            xml.unlink(missing_ok=True)
            cmd = [
                sys.executable, "-m", "pytest", "-c", str(HERE / "pytest.ini"),
                f"--rootdir={tree}", "-p", "feast_sqlreg_upstream", "-q", "-rfE",
                f"--junitxml={xml}", *pytest_args,
            ]
            started = time.monotonic()
            with open(log, "w") as f:
                rc = subprocess.run(cmd, cwd=tree, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
            got = outcomes(xml)
            passed = sum(1 for o, _ in got.values() if o == "passed")
            print(f"  {mode:6} {name:22} {passed:3}/{len(got):<3} passed  "
                  f"({time.monotonic() - started:.0f} s, {os.path.relpath(log)})", flush=True)
            if rc not in (0, 1) or not got:
                print(f"    pytest exited {rc}; see {log}")
            for (classname, test), outcome in got.items():
                cls = classname.rsplit(".", 1)[-1]
                label = f"{cls}::{test}" if cls.startswith("Test") else test
                key = (file, backend_of(file, test, extra), label)
                results.setdefault(key, {})[mode] = outcome

    report = summarize(results, args.modes.split(","), origin, version)
    (out / "summary.md").write_text(report)
    print()
    print(report)
    regressions = [k for k, v in results.items()
                   if v.get("stock", ("",))[0] == "passed" and v.get("native", ("",))[0] != "passed"
                   and "native" in v]
    return 1 if regressions else 0


def summarize(results, modes, origin, version) -> str:
    lines = [f"Feast's upstream SQL registry tests (feast {version}; tests from {origin})", ""]
    header = "| file | backend | " + " | ".join(modes) + " |"
    lines += [header, "| --- | --- | " + " | ".join("---" for _ in modes) + " |"]
    groups = {}
    for (file, backend, _), by_mode in results.items():
        groups.setdefault((file, backend), []).append(by_mode)
    order = {b: i for i, b in enumerate(BACKENDS)}
    for (file, backend), cases in sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
        cells = []
        for mode in modes:
            ran = [c[mode][0] for c in cases if mode in c]
            cells.append(f"{sum(o == 'passed' for o in ran)}/{len(ran)}")
        lines.append(f"| {Path(file).name} | {backend} | " + " | ".join(cells) + " |")
    totals = []
    for mode in modes:
        ran = [v[mode][0] for v in results.values() if mode in v]
        totals.append(f"{sum(o == 'passed' for o in ran)}/{len(ran)}")
    lines.append("| **total** | | " + " | ".join(totals) + " |")
    if len(modes) == 2:
        differ, both = [], []
        for (file, backend, test), v in sorted(results.items()):
            a, b = (v.get(m, ("absent", "")) for m in modes)
            if a[0] != b[0]:
                differ.append(f"- {Path(file).name} [{backend}] {test}: {modes[0]} {a[0]}, "
                              f"{modes[1]} {b[0]}" + (f" ({b[1] or a[1]})" if (b[1] or a[1]) else ""))
            elif a[0] != "passed":
                both.append(f"- {Path(file).name} [{backend}] {test}: {a[0]} on both ({a[1] or b[1]})")
        lines += ["", f"Outcomes that differ: {len(differ)}"] + differ
        lines += ["", f"Failing on both: {len(both)}"] + both
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
