"""Import cost of feast_sqlreg._sqlregistry in several installs, side by side.

    python scripts/import_cost.py [--runs N] [--max-ratio R] LABEL=PYTHON ...

Each PYTHON is an interpreter (a venv's bin/python) with feast_sqlreg
installed. The runs alternate between them, so a busy machine slows every
install alike. For each install it prints the median and the minimum of:
the module's cumulative time in `python -X importtime -c "import
feast_sqlreg._sqlregistry"` (loading the shared object and its libraries,
running the module's init), and the wall and CPU (user + system) time of
that whole process. With
--max-ratio, it fails when an install's median import time exceeds the
first install's by more than that factor.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

CODE = "import feast_sqlreg._sqlregistry"
MODULE = "feast_sqlreg._sqlregistry"


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_run(python):
    c0 = cpu_children()
    t0 = time.perf_counter()
    out = subprocess.run(
        [python, "-X", "importtime", "-c", CODE],
        cwd="/",  # a source tree in the working directory would shadow the install
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    cpu = cpu_children() - c0
    for line in out.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == MODULE:
            return int(parts[1]) / 1000.0, wall * 1000.0, cpu * 1000.0
    raise SystemExit(f"{python}: no import time for {MODULE} in:\n{out.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--max-ratio", type=float, default=None)
    ap.add_argument("installs", nargs="+", metavar="LABEL=PYTHON")
    args = ap.parse_args()
    # Absolute, not resolved: a venv's python is a symlink to its base.
    installs = [(lab, os.path.abspath(py)) for lab, py in (s.split("=", 1) for s in args.installs)]
    imports = {label: [] for label, _ in installs}
    walls = {label: [] for label, _ in installs}
    cpus = {label: [] for label, _ in installs}
    for label, python in installs:  # warm the page cache before measuring
        one_run(python)
    for _ in range(args.runs):
        for label, python in installs:
            imp, wall, cpu = one_run(python)
            imports[label].append(imp)
            walls[label].append(wall)
            cpus[label].append(cpu)
    print(f"import of {MODULE}, {args.runs} runs each (ms):")
    print(f"  {'install':<22} {'import median':>13} {'min':>6}"
          f" {'process wall median':>19} {'min':>6} {'process CPU median':>18}")
    for label, _ in installs:
        i, w, c = imports[label], walls[label], cpus[label]
        print(
            f"  {label:<22} {statistics.median(i):13.2f} {min(i):6.2f}"
            f" {statistics.median(w):19.1f} {min(w):6.1f} {statistics.median(c):18.1f}"
        )
    if args.max_ratio is not None:
        first = statistics.median(imports[installs[0][0]])
        for label, _ in installs[1:]:
            ratio = statistics.median(imports[label]) / first
            if ratio > args.max_ratio:
                print(f"FAIL: {label} imports {ratio:.2f}x slower than {installs[0][0]}")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
