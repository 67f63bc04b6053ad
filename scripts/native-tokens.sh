#!/usr/bin/env bash
# Native PKCS#11 3.2 post-quantum test tokens, in a Debian sid root under .cache/native-tokens/.
#
#   scripts/native-tokens.sh [setup]   set up (idempotent, quiet on success; `make native-tokens`)
#   scripts/native-tokens.sh exec [--token NAME] [VAR=VALUE ...] [--] CMD [ARG ...]
#                                      run CMD inside the root, in a private mount namespace,
#                                      with the repository and the current directory
#                                      bind-mounted at their own paths (exec --help)
#   scripts/native-tokens.sh status    what is there, and whether pkcsslotd runs
#   scripts/native-tokens.sh fresh-ock the spare openCryptoki token (slot 4) back to factory
#                                      state, for tests of `writroot token init`
#   scripts/native-tokens.sh clean     stop pkcsslotd and remove the cache
#
# Tokens (NAME): freehsm (freehsm-c as packaged), freehsm-fixed (freehsm-c rebuilt from Debian's
# source with the pairwise-test buffer fix) and opencryptoki (openCryptoki soft token, slot 3).
# All three are initialised with label writroot-native, SO PIN 76543210, user PIN 01234567.
# openCryptoki's slot 4 holds a second soft token left as it ships (not initialised).
# What it writes, and how a Python process loads each module: docs/native-tokens.md.
# Needs root (debootstrap, chroot, unshare), Debian 12 or 13, and Debian's apt mirror.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd -P)
CACHE=${NATIVE_TOKENS_CACHE:-$REPO/.cache/native-tokens}
ROOT=$CACHE/root
LOG=$CACHE/setup.log
STAMP=$CACHE/.stamp
SUITE=sid
VENV=/opt/native-venv
PYKCS11_VERSION=1.5.20
FIXED_SO=/usr/local/lib/freehsm-fixed/libfreehsm.so
PACKAGED_SO=/usr/lib/x86_64-linux-gnu/libfreehsm.so
OCK_SO=/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0
OCK_SLOT=3
OCK_SPARE_SLOT=4              # a soft token left uninitialised (fresh-ock resets it)
OCK_SPARE_DIR=swtok-spare     # its tokname: /var/lib/opencryptoki/swtok-spare
FHSM_DIR=/var/lib/native-tokens
LABEL=writroot-native
SO_PIN=76543210
USER_PIN=01234567
OCK_DEFAULT_SO_PIN=87654321   # what a fresh openCryptoki token takes
OCK_TEMP_USER_PIN=12345678    # set by the SO, then changed by the user (openCryptoki insists)
SIG_BUF_OLD=16384             # src/fhsm_pairwise.c: too small for SLH-DSA-SHA2-256s (29,792 bytes)
SIG_BUF_NEW=49856             # the largest SLH-DSA signature (SHAKE/SHA2-256f) fits
PACKAGES="freehsm-c opencryptoki libopencryptoki0 python3 python3-venv openssl softhsm2
  ca-certificates gcc make libc6-dev libssl-dev dpkg-dev xz-utils
  golang-go golang-golang-x-mod-dev golang-filippo-torchwood-dev golang-github-spiffe-go-spiffe-dev"
ROOT_PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "native-tokens: $*"; }
die() { echo "native-tokens: $*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] && return
  command -v sudo >/dev/null || die "needs root (debootstrap, chroot, unshare)"
  exec sudo -- "$SELF" "$@"
}

# --- running things inside the root -------------------------------------------------------
# Every command runs in its own private mount namespace (unshare), so nothing stays mounted
# on the host: /proc and the repository are mounted for that command only.

# Environment variables a caller may hand into the root (everything else is dropped).
passthrough_env() {
  local v
  for v in $(compgen -e); do
    case $v in
      TERM|CI|TZ|COLUMNS|NO_COLOR|FORCE_COLOR|WRITROOT_*|PYTEST_*|HYPOTHESIS_*|NATIVE_*|FHSM_*)
        printf '%s=%s\0' "$v" "${!v}" ;;
    esac
  done
}

proxy_env() {  # the host's proxy settings, for apt and pip inside the root
  local v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [ -n "${!v:-}" ]; then printf '%s=%s\n' "$v" "${!v}"; fi
  done
}

# root_run [--no-repo] CWD [VAR=VALUE ...] -- CMD [ARG ...]
root_run() {
  unshare --mount --propagation private -- "$SELF" __enter "$@"
}

private_ns_check() {  # unshare needs / to be a mount point (it is, except inside a chroot)
  unshare --mount --propagation private -- true 2>/dev/null \
    || die "unshare --mount --propagation private fails here (is / a mount point? inside a chroot, bind-mount the chroot onto itself first)"
}

enter() {  # (inside the new mount namespace)
  local repo=1 bind=
  if [ "${1:-}" = --no-repo ]; then repo=0; shift; fi
  if [ "${1:-}" = --bind ]; then bind=$2; shift 2; fi
  local cwd=$1; shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  mount -t proc proc "$ROOT/proc"
  # The host's view of its network interfaces, read-only, for writroot's air-gap check
  # (sysfs shows the interfaces of the mounting process's network namespace: the host's).
  # Without it the root has no /sys/class/net and `ceremony run` refuses to guess.
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$ROOT/sys" 2>/dev/null || true
  if [ $repo = 1 ]; then
    mkdir -p "$ROOT$REPO"
    mount --bind "$REPO" "$ROOT$REPO"
    # The root's own files at their host path too, so a host profile may name a module as the
    # officer sees it ($ROOT/usr/...). Usually that path resolves through the repository
    # already; not when the cache sits elsewhere (NATIVE_TOKENS_CACHE, a symlinked .cache).
    local real
    real=$(readlink -f "$ROOT")
    if ! chroot "$ROOT" /usr/bin/test -e "$real/usr/bin/env" 2>/dev/null \
        && [ "$(realpath -m "$ROOT$real")" = "$real$real" ]; then
      mkdir -p "$ROOT$real" && mount --bind "$ROOT" "$ROOT$real"
    fi
    [ -z "$bind" ] || mount --bind "$bind" "$ROOT$bind"
    # pseudo-terminals (pexpect, `script`): a devpts instance of this namespace's own
    if mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$ROOT/dev/pts" 2>/dev/null
    then mount --bind "$ROOT/dev/pts/ptmx" "$ROOT/dev/ptmx" 2>/dev/null || true
    fi
  fi
  local proxies=() line
  while IFS= read -r line; do proxies+=("$line"); done < <(proxy_env)
  exec chroot "$ROOT" /usr/bin/env -i -C "$cwd" PATH="$ROOT_PATH" HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "${proxies[@]}" "${envs[@]}" "$@"
}

# in_root CMD...: a setup step inside the root, output to the log
in_root() { root_run / -- "$@" </dev/null >>"$LOG" 2>&1; }

# --- pkcsslotd ------------------------------------------------------------------------------

slotd_pid() {
  local p
  p=$(cat "$ROOT/run/opencryptoki/pkcsslotd.pid" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = pkcsslotd ] || return 1
  # a killed daemon nobody has reaped yet is no daemon
  case $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) in Z|X|"") return 1 ;; esac
  echo "$p"
}

start_slotd() {
  # After a reboot the root still holds the old daemon's pid file, sockets and shared memory
  # (the root's /run and /dev/shm are plain directories): clear them first.
  rm -f "$ROOT"/run/opencryptoki/pkcsslotd.pid "$ROOT"/run/opencryptoki/*.socket
  rm -f "$ROOT"/dev/shm/var.lib.opencryptoki*
  # The daemon must inherit no descriptor but the log: not our lock (fd 9), not make's pipes.
  ( for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done 2>/dev/null
    root_run --no-repo / -- /bin/sh -ec '
      mkdir -p /run/lock
      install -d -m 0710 -o pkcsslotd -g pkcs11 /run/opencryptoki
      install -d -m 0770 -o root -g pkcs11 /run/lock/opencryptoki /run/lock/opencryptoki/swtok \
        /run/lock/opencryptoki/'"$OCK_SPARE_DIR"'
      exec /usr/sbin/pkcsslotd' </dev/null >>"$LOG" 2>&1 ) || return 1
  local i
  for i in $(seq 50); do
    slotd_pid >/dev/null && [ -S "$ROOT/run/opencryptoki/pkcsslotd.socket" ] && return 0
    sleep 0.1
  done
  return 1
}

stop_slotd() {
  local p i
  p=$(slotd_pid) || return 0
  kill "$p"
  for i in $(seq 50); do [ -e "/proc/$p" ] || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}

ensure_slotd() {
  slotd_pid >/dev/null && return 0
  [ -x "$ROOT/usr/sbin/pkcsslotd" ] || return 0
  start_slotd || fail "starting pkcsslotd"
}

# --- setup steps ----------------------------------------------------------------------------

fail() {
  echo "native-tokens: $1 failed; last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2 || true
  exit 1
}

step_key_ok() { [ -f "$CACHE/.step-$1" ] && [ "$(cat "$CACHE/.step-$1")" = "$2" ]; }
step_done() { printf '%s' "$2" >"$CACHE/.step-$1"; }

host_check() {
  [ -r /etc/debian_version ] || die "this script sets up a Debian root with debootstrap: Debian 12 or 13 hosts only"
  local id ver
  id=$(. /etc/os-release && echo "${ID:-}")
  ver=$(. /etc/os-release && echo "${VERSION_ID:-}")
  case "$id $ver" in
    "debian 12"|"debian 13") ;;
    *) say "warning: host is ${id:-?} ${ver:-?}; tested on Debian 12 and 13" >&2 ;;
  esac
  [ "$(uname -m)" = x86_64 ] || die "x86_64 only (the module paths are x86_64-linux-gnu)"
  private_ns_check
  if ! command -v debootstrap >/dev/null || ! command -v unshare >/dev/null; then
    say "installing debootstrap (apt)"
    { apt-get update -qq && apt-get install -y -qq debootstrap util-linux; } >>"$LOG" 2>&1 \
      || fail "apt-get install debootstrap"
  fi
}

# Debian's mirror as this host's apt is configured (deb822 or one-line sources alike).
host_mirror() {
  if [ -n "${NATIVE_TOKENS_MIRROR:-}" ]; then echo "$NATIVE_TOKENS_MIRROR"; return; fi
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
    | awk '$2 !~ /[-\/]/ && $1 !~ /security/ {print $1; exit}' | sed 's:/*$::'
}

step_bootstrap() {
  [ -x "$ROOT/usr/bin/apt-get" ] && return
  local mirror
  mirror=$(host_mirror)
  [ -n "$mirror" ] || die "no Debian mirror in this host's apt sources; set NATIVE_TOKENS_MIRROR"
  say "bootstrapping a Debian $SUITE root (debootstrap)"
  rm -rf "$ROOT.partial"
  debootstrap --variant=minbase "$SUITE" "$ROOT.partial" "$mirror" >>"$LOG" 2>&1 \
    || fail "debootstrap $SUITE"
  printf '%s' "$mirror" >"$ROOT.partial/etc/native-tokens-mirror"
  mv "$ROOT.partial" "$ROOT"
}

configure_root() {
  local mirror
  mirror=$(cat "$ROOT/etc/native-tokens-mirror")
  printf 'deb %s %s main\ndeb-src %s %s main\n' "$mirror" $SUITE "$mirror" $SUITE \
    >"$ROOT/etc/apt/sources.list"
  # The mirror may serve a sid whose Release file is past its Valid-Until: accept it.
  cat >"$ROOT/etc/apt/apt.conf.d/99native-tokens" <<'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Sandbox::User "root";
EOF
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"   # start no services
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  cp -L /etc/hosts "$ROOT/etc/hosts" 2>/dev/null || true
  # Trust the same local CAs as the host (pip and apt behind a TLS-inspecting proxy).
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  fi
  mkdir -p "$ROOT$REPO" "$ROOT/run/lock" "$ROOT$FHSM_DIR"
  chmod 1777 "$ROOT/dev/shm"
}

step_packages() {
  local key="$SUITE $(echo $PACKAGES)"
  step_key_ok packages "$key" && return
  say "installing freehsm-c, opencryptoki and build tools in the root (apt)"
  # shellcheck disable=SC2086
  in_root /bin/sh -ec "apt-get update -qq
    apt-get install -y -qq $(echo $PACKAGES)
    update-ca-certificates
    apt-get clean" || fail "apt-get install in the root"
  ock_conf
  step_done packages "$key"
}

# openCryptoki: two soft tokens, slot $OCK_SLOT and the spare (slot $OCK_SPARE_SLOT, its own
# token directory); the directories group-owned by pkcs11.
ock_conf() {
  cat >"$ROOT/etc/opencryptoki/opencryptoki.conf" <<EOF
version opencryptoki-3.27
slot $OCK_SLOT
{
    stdll = libpkcs11_sw.so
    tokversion = 3.12
}
slot $OCK_SPARE_SLOT
{
    stdll = libpkcs11_sw.so
    tokversion = 3.12
    tokname = $OCK_SPARE_DIR
}
EOF
  in_root /bin/sh -ec "
    install -d /var/lib/opencryptoki/$OCK_SPARE_DIR/TOK_OBJ
    chgrp -R pkcs11 /var/lib/opencryptoki /var/log/opencryptoki
    chmod 0770 /var/lib/opencryptoki /var/lib/opencryptoki/swtok /var/lib/opencryptoki/swtok/TOK_OBJ \
      /var/lib/opencryptoki/$OCK_SPARE_DIR /var/lib/opencryptoki/$OCK_SPARE_DIR/TOK_OBJ" \
    || fail "openCryptoki directories"
}

# A token store as it ships: its files, then its shared memory (only the spare's, while
# pkcsslotd runs: no process may have the spare open then).
ock_wipe() {
  find "$ROOT/var/lib/opencryptoki/$1" -mindepth 1 -maxdepth 1 ! -name TOK_OBJ -exec rm -rf {} +
  find "$ROOT/var/lib/opencryptoki/$1/TOK_OBJ" -mindepth 1 -delete
  rm -f "$ROOT/dev/shm/var.lib.opencryptoki.$1"
}

fhsm_version() { root_run / -- dpkg-query -W -f='${Version}' freehsm-c; }

step_build() {
  local version key
  version=$(fhsm_version) || fail "dpkg-query freehsm-c"
  key="$version $SIG_BUF_OLD>$SIG_BUF_NEW"
  step_key_ok build "$key" && [ -f "$ROOT$FIXED_SO" ] && return
  say "rebuilding freehsm-c $version with the pairwise-test buffer at $SIG_BUF_NEW bytes"
  in_root /bin/bash -ec "
    rm -rf /usr/local/src/freehsm-c && mkdir -p /usr/local/src/freehsm-c
    cd /usr/local/src/freehsm-c
    apt-get source -qq freehsm-c=$version
    cd freehsm-c-*/
    sed -i 's/uint8_t sig\[$SIG_BUF_OLD\];/uint8_t sig[$SIG_BUF_NEW];/' src/fhsm_pairwise.c
    test \"\$(grep -c 'uint8_t sig\[$SIG_BUF_NEW\];' src/fhsm_pairwise.c)\" = 1 \
      || { echo 'src/fhsm_pairwise.c: the sig[$SIG_BUF_OLD] buffer line was not found'; exit 1; }
    grep -n 'uint8_t sig\[$SIG_BUF_NEW\];' src/fhsm_pairwise.c
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all   # as debian/rules
    python3 scripts/gen_p11_thunks.py --profile=fips-strict --root=.
    make -j\$(nproc) libfreehsm.so \
      LOCAL_CFLAGS=\"\$(dpkg-buildflags --get CPPFLAGS) -Wno-error=format-truncation -Wno-error=unused-but-set-variable \$(dpkg-buildflags --get CFLAGS)\" \
      LOCAL_LDFLAGS=\"\$(dpkg-buildflags --get LDFLAGS)\"
    install -D -m 0644 libfreehsm.so $FIXED_SO" || fail "rebuilding freehsm-c"
  step_done build "$key"
}

step_venv() {
  local key
  key="PyKCS11==$PYKCS11_VERSION $(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
  step_key_ok venv "$key" && [ -x "$ROOT$VENV/bin/python" ] && return
  say "installing PyKCS11 $PYKCS11_VERSION and writroot (editable) in the root's venv (pip)"
  root_run / -- /bin/sh -ec "
    test -x $VENV/bin/python || python3 -m venv $VENV
    $VENV/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    $VENV/bin/python -m pip install -q --disable-pip-version-check PyKCS11==$PYKCS11_VERSION
    $VENV/bin/python -m pip install -q --disable-pip-version-check -e '$REPO[test]'
    cd $REPO && $VENV/bin/python -c 'import writroot, pkcs11, pqcrypto, slhdsa, PyKCS11'" \
    </dev/null >>"$LOG" 2>&1 || fail "pip install in the root"
  step_done venv "$key"
}

step_ock_token() {
  local key="$LABEL $SO_PIN $USER_PIN spare $OCK_SPARE_SLOT $OCK_SPARE_DIR"
  if step_key_ok ock "$key"; then ensure_slotd; return; fi
  say "initialising the openCryptoki soft token (slot $OCK_SLOT; slot $OCK_SPARE_SLOT left fresh)"
  stop_slotd
  ock_conf
  ock_wipe swtok
  ock_wipe "$OCK_SPARE_DIR"
  start_slotd || fail "starting pkcsslotd"
  in_root /bin/sh -ec "
    printf '%s\n%s\n' $OCK_DEFAULT_SO_PIN $LABEL | pkcsconf -I -c $OCK_SLOT
    pkcsconf -c $OCK_SLOT -P -S $OCK_DEFAULT_SO_PIN -n $SO_PIN
    pkcsconf -c $OCK_SLOT -u -S $SO_PIN -n $OCK_TEMP_USER_PIN
    pkcsconf -c $OCK_SLOT -p -U $OCK_TEMP_USER_PIN -n $USER_PIN
    pkcsconf -c $OCK_SLOT -t" || fail "openCryptoki token init"
  step_done ock "$key"
}

step_fhsm_tokens() {
  local name module dir key
  for name in freehsm freehsm-fixed; do
    if [ $name = freehsm ]; then module=$PACKAGED_SO; else module=$FIXED_SO; fi
    dir=$FHSM_DIR/$name
    key="$module $LABEL $SO_PIN $USER_PIN $(sha256sum "$ROOT$module" | cut -d' ' -f1)"
    step_key_ok "$name" "$key" && [ -f "$ROOT$dir/slot0.tok" ] && continue
    say "initialising the $name token (slot 0, $dir)"
    rm -rf "${ROOT:?}$dir"
    in_root env FHSM_INTEGRITY_ALLOW_UNSIGNED=1 FHSM_TOKENS_DIR="$dir" $VENV/bin/python -c "
import PyKCS11, sys
lib = PyKCS11.PyKCS11Lib(); lib.load('$module')
lib.initToken(0, '$SO_PIN', '$LABEL')
s = lib.openSession(0, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
s.login('$SO_PIN', PyKCS11.CKU_SO); s.initPin('$USER_PIN'); s.logout(); s.closeSession()
s = lib.openSession(0, PyKCS11.CKF_SERIAL_SESSION); s.login('$USER_PIN'); s.logout()
print(lib.getTokenInfo(0))" || fail "$name token init"
    step_done "$name" "$key"
  done
}

# Can the host's own Python dlopen a module? (Debian 12: no, the modules need glibc >= 2.38.)
host_dlopen() {
  local out
  if out=$(python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$ROOT$1" 2>&1); then
    echo true
  else
    echo false; printf '%s' "$out" | tail -n 1 >"$CACHE/host-dlopen-$2.txt"
  fi
}

write_env() {
  local fv ov host_f host_x host_o
  fv=$(fhsm_version); ov=$(root_run / -- dpkg-query -W -f='${Version}' opencryptoki)
  host_f=$(host_dlopen "$PACKAGED_SO" freehsm)
  host_x=$(host_dlopen "$FIXED_SO" freehsm-fixed)
  host_o=$(host_dlopen "$OCK_SO" opencryptoki)
  cat >"$CACHE/env.json.tmp" <<EOF
{
  "root": "$ROOT",
  "suite": "$SUITE",
  "exec": ["$SELF", "exec", "--"],
  "python": "$VENV/bin/python",
  "repo": "$REPO",
  "common_env": {"FHSM_INTEGRITY_ALLOW_UNSIGNED": "1"},
  "tokens": {
    "freehsm": {
      "command_prefix": ["$SELF", "exec", "--token", "freehsm", "--"],
      "module": "$PACKAGED_SO", "version": "freehsm-c $fv (as packaged)",
      "slot": 0, "label": "$LABEL", "so_pin": "$SO_PIN", "user_pin": "$USER_PIN",
      "env": {"FHSM_TOKENS_DIR": "$FHSM_DIR/freehsm"}, "host_python_can_dlopen": $host_f
    },
    "freehsm-fixed": {
      "command_prefix": ["$SELF", "exec", "--token", "freehsm-fixed", "--"],
      "module": "$FIXED_SO", "version": "freehsm-c $fv rebuilt, pairwise buffer $SIG_BUF_NEW",
      "slot": 0, "label": "$LABEL", "so_pin": "$SO_PIN", "user_pin": "$USER_PIN",
      "env": {"FHSM_TOKENS_DIR": "$FHSM_DIR/freehsm-fixed"}, "host_python_can_dlopen": $host_x
    },
    "opencryptoki": {
      "command_prefix": ["$SELF", "exec", "--token", "opencryptoki", "--"],
      "module": "$OCK_SO", "version": "openCryptoki $ov soft token",
      "slot": $OCK_SLOT, "label": "$LABEL", "so_pin": "$SO_PIN", "user_pin": "$USER_PIN",
      "env": {}, "host_python_can_dlopen": $host_o,
      "spare_slot": $OCK_SPARE_SLOT, "factory_so_pin": "$OCK_DEFAULT_SO_PIN",
      "needs": "pkcsslotd running in the root (started by setup and by exec)"
    }
  }
}
EOF
  mv "$CACHE/env.json.tmp" "$CACHE/env.json"
  cat >"$CACHE/env.sh.tmp" <<EOF
# Written by scripts/native-tokens.sh. Module paths are paths inside the root: run Python
# through \$NATIVE_EXEC (docs/native-tokens.md). e.g.
#   \$NATIVE_EXEC --token freehsm-fixed -- python -c 'import writroot'
NATIVE_ROOT=$ROOT
NATIVE_EXEC="$SELF exec"
NATIVE_PYTHON=$VENV/bin/python
NATIVE_SO_PIN=$SO_PIN
NATIVE_USER_PIN=$USER_PIN
NATIVE_TOKEN_LABEL=$LABEL
NATIVE_FREEHSM_MODULE=$PACKAGED_SO
NATIVE_FREEHSM_TOKENS_DIR=$FHSM_DIR/freehsm
NATIVE_FREEHSM_FIXED_MODULE=$FIXED_SO
NATIVE_FREEHSM_FIXED_TOKENS_DIR=$FHSM_DIR/freehsm-fixed
NATIVE_OPENCRYPTOKI_MODULE=$OCK_SO
NATIVE_OPENCRYPTOKI_SLOT=$OCK_SLOT
NATIVE_OPENCRYPTOKI_SPARE_SLOT=$OCK_SPARE_SLOT
FHSM_INTEGRITY_ALLOW_UNSIGNED=1
EOF
  mv "$CACHE/env.sh.tmp" "$CACHE/env.sh"
}

stamp_key() { cat "$SELF" "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1; }

setup() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_key)" ] && [ -x "$ROOT/usr/bin/apt-get" ]; then
    ensure_slotd
    return
  fi
  echo "== $(date -u +%FT%TZ) setup" >>"$LOG"
  local step t0
  for step in host_check step_bootstrap configure_root step_packages step_build step_venv \
              step_ock_token step_fhsm_tokens write_env; do
    t0=$(date +%s.%N)
    $step
    awk -v a="$t0" -v b="$(date +%s.%N)" -v s="$step" 'BEGIN {printf "== %s: %.1f s\n", s, b - a}' >>"$LOG"
  done
  stamp_key >"$STAMP"
}

# --- exec -----------------------------------------------------------------------------------

token_env() {  # NAME -> VAR=VALUE lines
  local module slot dir=
  case $1 in
    freehsm) module=$PACKAGED_SO slot=0 dir=$FHSM_DIR/freehsm ;;
    freehsm-fixed) module=$FIXED_SO slot=0 dir=$FHSM_DIR/freehsm-fixed ;;
    opencryptoki) module=$OCK_SO slot=$OCK_SLOT ;;
    *) die "unknown token '$1' (freehsm, freehsm-fixed, opencryptoki)" ;;
  esac
  printf '%s\n' "NATIVE_TOKEN=$1" "NATIVE_PKCS11_MODULE=$module" "NATIVE_TOKEN_SLOT=$slot" \
    "NATIVE_TOKEN_LABEL=$LABEL" "NATIVE_SO_PIN=$SO_PIN" "NATIVE_USER_PIN=$USER_PIN"
  [ -z "$dir" ] || echo "FHSM_TOKENS_DIR=$dir"
}

do_exec() {
  local envs=() token=
  while [ $# -gt 0 ]; do
    case $1 in
      --token) token=$2; shift 2 ;;
      --token=*) token=${1#--token=}; shift ;;
      --) shift; break ;;
      [A-Za-z_]*=*) envs+=("$1"); shift ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || { exec_usage >&2; exit 2; }
  [ -f "$STAMP" ] || die "no native tokens yet: run 'make native-tokens' first"
  mkdir -p "$CACHE"
  ( exec 9>"$CACHE/.lock"; flock 9; ensure_slotd )
  local all=(FHSM_INTEGRITY_ALLOW_UNSIGNED=1 "NATIVE_TOKENS_ENV=$CACHE/env.json")
  local line
  while IFS= read -r -d '' line; do all+=("$line"); done < <(passthrough_env)
  if [ -n "$token" ]; then
    while IFS= read -r line; do all+=("$line"); done < <(token_env "$token")
  fi
  # this tree's writroot first (the venv's editable install may point at another checkout)
  all+=("PYTHONPATH=$REPO" "${envs[@]}")
  local cwd bind=()
  cwd=$(pwd -P)
  case $cwd in
    "$REPO"|"$REPO"/*) ;;
    *) check_bind "$cwd"; bind=(--bind "$cwd") ;;
  esac
  exec unshare --mount --propagation private -- "$SELF" __enter "${bind[@]}" "$cwd" "${all[@]}" \
    -- "$@"
}

# The caller's directory (outside the repository) is bind-mounted at its own path in the root:
# only where the root has nothing (no such path, or an empty directory), and never through a
# symbolic link of the root's, so no system directory of the root is hidden or written.
check_bind() {
  local dir=$1 real target
  real=$(readlink -f "$ROOT")
  case $dir in
    /) die "exec: run it from a ceremony directory, not from /" ;;
    "$real"|"$real"/*|"$CACHE"|"$CACHE"/*)
      die "exec: $dir is inside the tokens' cache; run it from a ceremony directory" ;;
  esac
  target=$ROOT$dir
  [ "$(realpath -m "$target")" = "$real$dir" ] \
    || die "exec: $dir leads through a symbolic link inside the root; run it from another directory"
  if [ -e "$target" ] && { [ ! -d "$target" ] || [ -n "$(ls -A "$target")" ]; }; then
    die "exec: $dir holds the root's own files; run it from a ceremony directory (e.g. under /home or /srv)"
  fi
  mkdir -p "$target"
}

exec_usage() {  # (no root needed)
  cat <<EOF
usage: scripts/native-tokens.sh exec [--token NAME] [VAR=VALUE ...] [--] CMD [ARG ...]

Runs CMD inside the Debian sid root of the native tokens (as root; through sudo when needed),
in a private mount namespace, with a clean environment. The modules need the root's glibc
(>= 2.38): load them only through exec. writroot on a Debian 12 host cannot load them
("GLIBC_2.38 not found").

  --token NAME   freehsm, freehsm-fixed or opencryptoki: sets NATIVE_PKCS11_MODULE (the
                 module's path inside the root), NATIVE_TOKEN_SLOT, NATIVE_TOKEN_LABEL,
                 NATIVE_SO_PIN, NATIVE_USER_PIN and, for freehsm, FHSM_TOKENS_DIR
  VAR=VALUE      set in the root (after everything else, so these win)

Inside the root:
  - the working directory is the caller's: the repository, or any other directory, which is
    bind-mounted at its own path (it must not hide the root's own files: use a directory
    under /home, /srv or /tmp, say); name files by paths inside that directory;
  - python is the root's venv, with this tree's writroot first (PYTHONPATH=$REPO);
  - /sys is the host's, read-only, so writroot's air-gap check sees the host's interfaces;
  - a module may be named by its path inside the root (/usr/...) or as the host sees it
    ($(readlink -f "$ROOT" 2>/dev/null || echo "$ROOT")/usr/...);
  - COLUMNS and LINES are the caller's terminal size; TERM, CI, TZ, NO_COLOR, FORCE_COLOR and
    every WRITROOT_*, PYTEST_*, HYPOTHESIS_*, NATIVE_*, FHSM_* variable are handed through.

Its exit status is CMD's. An officer's guide: docs/runbook.md, "A ceremony on a native
PKCS#11 3.2 token".
EOF
}

# COLUMNS=N and LINES=N of the caller's terminal, one a line (sudo drops the environment, and a
# shell's COLUMNS is seldom exported). The terminal itself wins: an exported COLUMNS may be stale
# or set for another program; it is used only when there is no terminal.
term_size() {
  local rows cols
  if read -r rows cols < <(stty size 2>/dev/null </dev/tty) && [ -n "${cols:-}" ] \
      && [ "$cols" -gt 0 ]; then
    printf 'COLUMNS=%s\nLINES=%s\n' "$cols" "$rows"; return 0
  fi
  if [ -n "${COLUMNS:-}" ]; then
    echo "COLUMNS=$COLUMNS"; [ -z "${LINES:-}" ] || echo "LINES=$LINES"
  fi
  return 0
}

fresh_ock() {
  [ -f "$STAMP" ] || die "no native tokens yet: run 'make native-tokens' first"
  exec 9>"$CACHE/.lock"; flock 9
  ock_wipe "$OCK_SPARE_DIR"
  ensure_slotd
}

status() {
  [ -f "$STAMP" ] && echo "set up: $ROOT" || echo "not set up (make native-tokens)"
  [ -f "$CACHE/env.json" ] && echo "env: $CACHE/env.json, $CACHE/env.sh"
  local p
  if p=$(slotd_pid); then echo "pkcsslotd: running, pid $p"; else echo "pkcsslotd: not running"; fi
}

clean() {
  stop_slotd
  if findmnt -rno TARGET | grep -q "^$ROOT"; then die "something is mounted under $ROOT: unmount it first"; fi
  rm -rf --one-file-system "$CACHE"
}

case ${1:-setup} in
  __enter) shift; enter "$@" ;;
  setup) need_root "$@"; setup ;;
  exec)
    case ${2:-} in -h|--help|help) exec_usage; exit 0 ;; esac
    shift; mapfile -t size < <(term_size); set -- exec "${size[@]}" "$@"  # before sudo
    need_root "$@"; shift; do_exec "$@" ;;
  status) status ;;
  clean) need_root "$@"; clean ;;
  fresh-ock) need_root "$@"; fresh_ock ;;
  -h|--help|help) sed -n '2,19p' "$SELF" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (setup, exec, status, clean, fresh-ock)" ;;
esac
