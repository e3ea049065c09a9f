# Helpers shared by scripts/test, scripts/demo and scripts/container_test.
# Sourced, never run. Everything here works on a fresh Debian 12 machine.

# The Debian packages each part of the project needs.
CONVNET_BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libssl-dev zlib1g-dev
)
CONVNET_TEST_PACKAGES=(libgtest-dev libgmock-dev libbenchmark-dev openssl)
CONVNET_PYTHON_PACKAGES=(python3 python3-grpcio python3-protobuf)
CONVNET_CONTAINER_PACKAGES=(podman runc debootstrap)
# scripts/fuzz and scripts/sanitize (ASan + UBSan): Debian's clang with
# libFuzzer and the sanitizer runtimes.
CONVNET_FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)

# The Debian interpreter: the one that sees python3-grpcio (a python3 earlier
# on PATH, from pyenv or a virtualenv, usually does not).
CONVNET_PYTHON=/usr/bin/python3

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*' (not root, and sudo is not installed)"
  fi
}

# ensure_packages PKG...: installs the packages that dpkg does not show as
# installed, with a single apt-get update first. Does nothing (and needs no
# root) when all are present.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$pkg")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  if [[ -z ${CONVNET_APT_UPDATED:-} ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    CONVNET_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  "$CONVNET_PYTHON" - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

# configure_and_build BUILD_DIR [-DNAME=VALUE...] -- [TARGETS...]: a Release
# build with Ninja. An existing build directory is reconfigured only when one
# of the given -D values differs from its cache, so re-running it when nothing
# changed costs no more than a ninja no-op.
configure_and_build() {
  local build_dir=$1; shift
  local cmake_args=() targets=() arg name value
  while [[ $# -gt 0 && $1 != -- ]]; do cmake_args+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  targets=("$@")
  if [[ ! -f $build_dir/build.ninja ]]; then
    log "configuring $build_dir (Release, Ninja)"
    cmake -S "$CONVNET_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}"
  else
    for arg in "${cmake_args[@]}"; do
      name=${arg#-D}; name=${name%%=*}; value=${arg#*=}
      if ! grep -q "^$name:[A-Z]*=$value\$" "$build_dir/CMakeCache.txt"; then
        log "reconfiguring $build_dir ($name=$value)"
        cmake -S "$CONVNET_ROOT" -B "$build_dir" "${cmake_args[@]}"
        break
      fi
    done
  fi
  log "building in $build_dir (-j${CONVNET_JOBS})"
  if [[ ${#targets[@]} -gt 0 ]]; then
    cmake --build "$build_dir" -j "$CONVNET_JOBS" --target "${targets[@]}"
  else
    cmake --build "$build_dir" -j "$CONVNET_JOBS"
  fi
}

# build_asan [TARGETS...]: the one clang build that serves both the fuzzers
# (scripts/fuzz) and the ASan + UBSan tests (scripts/sanitize): every library
# instrumented for libFuzzer and ASan + UBSan, the tests and the fuzz targets
# in one tree, so that neither script compiles what the other has built.
# Its directory is $CONVNET_ASAN_BUILD_DIR.
build_asan() {
  ensure_packages "${CONVNET_BUILD_PACKAGES[@]}" "${CONVNET_TEST_PACKAGES[@]}" "${CONVNET_FUZZ_PACKAGES[@]}"
  configure_and_build "$CONVNET_ASAN_BUILD_DIR" -DCMAKE_CXX_COMPILER=/usr/bin/clang++-14 -DCONVNET_FUZZ=ON \
    -DCONVNET_SANITIZE=address -DCONVNET_BUILD_TESTS=ON -DCONVNET_BUILD_BENCH=OFF \
    -DCONVNET_BUILD_SERVICE=ON -- "$@"
}

# wait_for_server CLIENT ADDRESS SECONDS [PID]: polls the health check until
# the server answers SERVING. Fails early when process PID has exited.
wait_for_server() {
  local client=$1 address=$2 seconds=$3 pid=${4:-}
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "the server (pid $pid) exited before answering"
      return 1
    fi
    if "$client" --address="$address" --timeout=2s health >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  log "no healthy server at $address after ${seconds}s"
  return 1
}

# stop_process PID [SECONDS]: SIGTERM, then waits (SIGKILL after SECONDS).
# Returns the process's exit status when it is our child.
stop_process() {
  local pid=$1 seconds=${2:-20} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still running ${seconds}s after SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null
}

CONVNET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONVNET_JOBS=${CONVNET_JOBS:-2}
CONVNET_ASAN_BUILD_DIR=${CONVNET_ASAN_BUILD_DIR:-$CONVNET_ROOT/build-asan}
