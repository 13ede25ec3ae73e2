#!/bin/sh
# The binary wheel in dist/ (make wheel), tested where nothing of ours is:
#
# 1. A clean Debian bookworm root (debootstrap: python3 and python3-venv,
#    nothing else; made once, kept in build/wheel-root). In it, a venv gets
#    the wheel and Feast from PyPI; scripts/wheel_test_root.py checks that
#    the extension loads no system library besides glibc's, then runs
#    `feast apply` and `feast materialize` with `registry_type: sql` on
#    SQLite, on the local PostgreSQL and on the local MariaDB (as a user
#    that logs in with ed25519, so the bundled client plugins are needed),
#    and checks that FeatureStore used the native registry. The root runs
#    under chroot in a mount namespace of its own (its /proc and /dev mounts
#    go away with it) and shares the host's network, so 127.0.0.1 is the
#    host's servers.
# 2. The same wheel on every other CPython given as an argument: import,
#    and a store on SQLite, PostgreSQL and MariaDB.
# 3. The sdist, built by pip in a fresh venv here (with the -dev packages).
# 4. Import cost of the module: the wheel against the sdist's build.
#
# Usage: scripts/wheel_test.sh [PYTHON ...]   (as root; FEAST_VERSION=x.y.z)
#
# WHEEL=path tests that wheel instead of the one in dist/. WHEEL_SUITE=bullseye
# makes the clean root Debian 11 (glibc 2.31), whose own Python (3.9) is too
# old for the wheel and for Feast: WHEEL_PYTHON_DIR (a CPython built in the
# same suite, scripts/wheel_roots.sh makes one) is copied into it as
# /opt/python with the runtime libraries such a Python needs, as a
# python:3.11-slim-bullseye image has them.
#
# WHEEL_ARCH=arm64 (a Debian architecture other than the machine's) makes
# the clean root one of that architecture, run under qemu-user (Debian's
# qemu-user-static, registered with binfmt_misc: root_lib.sh's qemu_binfmt),
# with WHEEL_PYTHON_DIR a CPython built for it (wheel_roots.sh cross-builds
# one). Steps 2 and 3 are this machine's own Pythons and compiler, so they
# are left to the run for the machine's architecture; step 4 is then the
# wheel's import cost inside the root, that is under emulation.
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
t0=$(date +%s)
PYTHON=${PYTHON:-python3}
ROOT=${WHEEL_ROOT:-build/wheel-root}
PG_ADMIN=${FEAST_SQLREG_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
PG_BASE=${PG_ADMIN%/*}
MY_HOST=127.0.0.1
MY_PORT=3306
FEAST_SPEC=feast${FEAST_VERSION:+==$FEAST_VERSION}

one() { # the single file a glob names
  [ $# -eq 1 ] && [ -e "$1" ] || { echo "expected one file, got: $*" >&2; exit 1; }
  echo "$1"
}
wheel=${WHEEL:-$(one dist/feast_sqlreg-*-abi3-*.whl)}
SUITE=${WHEEL_SUITE:-bookworm}
NATIVE=$(dpkg --print-architecture)
ARCH=${WHEEL_ARCH:-$NATIVE}
if [ "$ARCH" != "$NATIVE" ] && [ "$SUITE" = bookworm ]; then
  echo "WHEEL_ARCH=$ARCH needs WHEEL_SUITE=bullseye" >&2
  exit 2
fi
if [ "$SUITE" = bookworm ]; then
  ROOT_PACKAGES=python3,python3-venv
  RPY=python3
else
  ROOT=${WHEEL_ROOT:-build/wheel-root-$SUITE$([ "$ARCH" = "$NATIVE" ] || echo "-$ARCH")}
  ROOT_PACKAGES=libssl1.1,libffi7,libsqlite3-0,libreadline8,libgdbm6,libncursesw6,libbz2-1.0,ca-certificates
  RPY=/opt/python/bin/python3
  : "${WHEEL_PYTHON_DIR:?WHEEL_PYTHON_DIR: a CPython built for $SUITE}"
fi
sdist=${WHEEL_SDIST:-$(one dist/feast_sqlreg-*.tar.gz)}
echo "== $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

# ---- the clean root ------------------------------------------------------
. scripts/root_lib.sh
mirror=$(debian_mirror)
[ "$ARCH" = "$NATIVE" ] || qemu_binfmt "$ARCH"
if [ ! -e "$ROOT/.fsr-root" ]; then
  echo "== debootstrap $SUITE ($ARCH) into $ROOT from $mirror ($ROOT_PACKAGES)"
  rm -rf --one-file-system "$ROOT.tmp"
  # Its own mount namespace: whatever debootstrap mounts dies with it.
  unshare --mount --propagation private \
    debootstrap --variant=minbase --arch="$ARCH" --include="$ROOT_PACKAGES" "$SUITE" \
    "$ROOT.tmp" "$mirror" >"$ROOT.log" 2>&1 || { tail -20 "$ROOT.log"; exit 1; }
  touch "$ROOT.tmp/.fsr-root"
  rm -rf --one-file-system "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
fi

rm -rf --one-file-system "$ROOT/opt/fsr"
if [ "$SUITE" != bookworm ]; then
  rm -rf --one-file-system "$ROOT/opt/python"
  cp -a "$WHEEL_PYTHON_DIR" "$ROOT/opt/python"
fi
mkdir -p "$ROOT/opt/fsr"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp "$wheel" scripts/wheel_test_root.py scripts/import_cost.py "$ROOT/opt/fsr/"
root_pip_cert "$ROOT"
echo "== the root: $(in_root "$ROOT" $RPY -c 'import platform, sys; print("python", sys.version.split()[0], platform.machine())'), $(in_root "$ROOT" ldd --version | head -1)," \
  "$(in_root "$ROOT" dpkg-query -W -f '${Package}\n' | wc -l) Debian packages"
if in_root "$ROOT" $RPY -c 'import feast_sqlreg' 2>/dev/null; then
  echo "FAIL: feast_sqlreg is importable in the root before the test"; exit 1
fi
have= lack=
for p in libpq5 libmariadb3 libprotobuf-c1 libsqlite3-0; do
  if in_root "$ROOT" dpkg-query -W "$p" >/dev/null 2>&1; then have="$have $p"; else lack="$lack $p"; fi
done
echo "   client library packages absent:${lack:- none}; present:${have:- none}"

# ---- databases for it, made from the host ----------------------------------
tag=fsr_wheel_$$
MY_USER=$tag
MY_PASS=ed25519-$$
cleanup() {
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $tag" >/dev/null 2>&1 || true
  mariadb -h$MY_HOST -P$MY_PORT -uroot -e \
    "DROP DATABASE IF EXISTS $tag; DROP USER IF EXISTS '$MY_USER'@'%'" 2>/dev/null || true
}
trap cleanup EXIT
psql -q "$PG_ADMIN" -c "CREATE DATABASE $tag"
if ! mariadb -h$MY_HOST -P$MY_PORT -uroot -N -e \
    "SELECT 1 FROM information_schema.plugins WHERE plugin_name='ed25519'" | grep -q 1; then
  # The server side of ed25519 (Debian's mariadb-server ships it).
  mariadb -h$MY_HOST -P$MY_PORT -uroot -e "INSTALL SONAME 'auth_ed25519'"
fi
mariadb -h$MY_HOST -P$MY_PORT -uroot -e "
  CREATE DATABASE $tag CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
  CREATE USER '$MY_USER'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('$MY_PASS');
  GRANT ALL ON $tag.* TO '$MY_USER'@'%';"
echo "   databases $tag on PostgreSQL and MariaDB; MariaDB user $MY_USER logs in with" \
  "$(mariadb -h$MY_HOST -P$MY_PORT -uroot -N -e "SELECT plugin FROM mysql.user WHERE user='$MY_USER'")"
PG_URL=$PG_BASE/$tag
MY_URL=mysql+pymysql://$MY_USER:$MY_PASS@$MY_HOST:$MY_PORT/$tag

# ---- 1. the clean root -------------------------------------------------------
echo "== in the root: venv, pip install $(basename "$wheel") $FEAST_SPEC (from PyPI)"
t1=$(date +%s)
in_root "$ROOT" sh -c "cd /opt/fsr && $RPY -m venv venv &&
  venv/bin/pip install -q ./$(basename "$wheel") '$FEAST_SPEC'" 2>&1 |
  grep -v '^WARNING: Location' || true
in_root "$ROOT" /opt/fsr/venv/bin/python -c 'import feast_sqlreg._sqlregistry' ||
  { echo "FAIL: pip install in the root"; exit 1; }
echo "   installed in $(($(date +%s) - t1)) s"
in_root "$ROOT" /opt/fsr/venv/bin/python /opt/fsr/wheel_test_root.py /opt/fsr \
  sqlite=sqlite:////opt/fsr/registry.db postgresql="$PG_URL" mariadb="$MY_URL"

if [ "$ARCH" != "$NATIVE" ]; then
  echo "== import cost in the $ARCH root, under qemu-user emulation (not comparable with $NATIVE's)"
  in_root "$ROOT" /opt/fsr/venv/bin/python /opt/fsr/import_cost.py --runs 10 \
    wheel=/opt/fsr/venv/bin/python
  echo "== wheel test ($ARCH) passed in $(($(date +%s) - t0)) s"
  exit 0
fi

# ---- 2. other CPythons -----------------------------------------------------
STORE_CHECK='
import sys
from feast_sqlreg import _sqlregistry
from feast_sqlreg._sqlregistry import Store
seen = []
for url in sys.argv[1:]:
    with Store(url) as s:
        s.create_schema()
        missing = s.missing_tables(False)
        assert not missing, missing
        seen.append(s.dialect)
so = _sqlregistry.__file__.rsplit("/", 1)[1]
print("python", sys.version.split()[0] + ":", so + ", stores on", ", ".join(seen) + ": ok")
'
for py in "$@"; do
  v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  venv=build/wheel-pythons/$v
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps "$wheel" 2>&1 | grep -v '^WARNING: Location' || true
  (cd / && "$here/$venv/bin/python" -c "$STORE_CHECK" "sqlite:////tmp/$tag-$v.db" \
    "$PG_URL" "$MY_URL")
  rm -f "/tmp/$tag-$v.db"
done

# ---- 3. the sdist ----------------------------------------------------------
echo "== pip install $(basename "$sdist") into a fresh venv (build isolation, setuptools from PyPI)"
sv=build/wheel-sdist
rm -rf "$sv"
"$PYTHON" -m venv "$sv"
"$sv/bin/pip" install -q --no-deps "$sdist" 2>&1 | grep -v '^WARNING: Location' || true
(cd / && "$here/$sv/bin/python" -c "$STORE_CHECK" "sqlite:////tmp/$tag-sdist.db" "$PG_URL" "$MY_URL")
rm -f "/tmp/$tag-sdist.db"

# ---- 4. import cost ----------------------------------------------------------
echo "== import cost: the wheel against the sdist's build (both CPython $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"
wv=build/wheel-import
rm -rf "$wv"
"$PYTHON" -m venv "$wv"
"$wv/bin/pip" install -q --no-deps "$wheel" 2>&1 | grep -v '^WARNING: Location' || true
"$PYTHON" scripts/import_cost.py --runs 40 sdist-build="$sv/bin/python" wheel="$wv/bin/python"

echo "== wheel test passed in $(($(date +%s) - t0)) s"
