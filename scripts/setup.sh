#!/usr/bin/env bash
# Installs what pesc needs from Debian 12's archive and builds it into build/.
# Sourced by demo.sh and test.sh; safe to run again (apt and CMake skip what
# is already done).
set -euo pipefail

PESC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PESC_BUILD="${PESC_BUILD:-$PESC_ROOT/build}"

PESC_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libsqlitecpp-dev libsqlite3-dev libarchive-dev libssl-dev
  libgtest-dev libbenchmark-dev
  python3
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for package in "${PESC_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "pesc: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build_pesc() {
  cmake -S "$PESC_ROOT" -B "$PESC_BUILD" -G Ninja -DCMAKE_BUILD_TYPE="${PESC_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
  ninja -C "$PESC_BUILD" -j "$(nproc)"
}
