# Shell functions for the Debian roots the wheel scripts make and run in
# (scripts/wheel_test.sh, scripts/wheel_roots.sh); sourced, not run.

# The Debian mirror this machine's apt uses ($DEBIAN_MIRROR overrides).
debian_mirror() {
  m=${DEBIAN_MIRROR:-$({
    sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
    sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}//p' /etc/apt/sources.list 2>/dev/null
  } | awk '{print $1}' | grep -v security | head -1)}
  echo "${m:-http://deb.debian.org/debian}"
}

# The host's CA bundle for pip in the root ROOT, in case HTTPS goes through
# a proxy that only the host trusts (Debian's pip in a root reads certifi's,
# not the system's): network set-up, nothing of ours. Sets ROOT_ENV.
root_pip_cert() {
  ROOT_ENV=
  ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
  mkdir -p "$1/opt/fsr-ca"
  if [ -f "$ca" ]; then
    cp "$ca" "$1/opt/fsr-ca/host-ca.crt"
    ROOT_ENV=PIP_CERT=/opt/fsr-ca/host-ca.crt
  fi
  export ROOT_ENV
}

# in_root ROOT CMD...: runs CMD in ROOT under chroot, in a mount namespace
# of its own (its /proc, /dev and fresh /dev/shm mounts go away with it),
# sharing the host's network, with a clean environment plus $ROOT_ENV.
in_root() {
  unshare --mount --propagation private sh -c '
    r=$1; shift
    mount --bind /proc "$r/proc" && mount --bind /dev "$r/dev" &&
      mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm" || exit 1
    exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/usr/local/bin:/usr/bin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 $ROOT_ENV "$@"' \
    sh "$@"
}

# qemu_binfmt ARCH: makes the kernel run ARCH's executables with Debian's
# qemu-user-static (its binfmt_misc entry, the F flag: the emulator is
# opened once, so it works inside a chroot), so that a root of ARCH runs
# here. Mounts binfmt_misc where nothing did (no systemd here).
qemu_binfmt() {
  case $1 in
    arm64) q=aarch64 ;;
    *) q=$1 ;;
  esac
  conf=/usr/lib/binfmt.d/qemu-$q.conf
  [ -e "$conf" ] || { echo "qemu_binfmt: no $conf (apt-get install qemu-user-static)" >&2; return 1; }
  mountpoint -q /proc/sys/fs/binfmt_misc ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || return 1
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$q" ] || cat "$conf" >/proc/sys/fs/binfmt_misc/register
  grep -qx enabled "/proc/sys/fs/binfmt_misc/qemu-$q" ||
    { echo "qemu_binfmt: qemu-$q is not enabled in binfmt_misc" >&2; return 1; }
}
