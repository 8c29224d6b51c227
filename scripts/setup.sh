#!/usr/bin/env bash
# Installs what pesc needs from Debian 12's archive and builds it into build/.
# Sourced by demo.sh and test.sh; safe to run again (apt and CMake skip what
# is already done).
set -euo pipefail

PESC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PESC_BUILD="${PESC_BUILD:-$PESC_ROOT/build}"
PESC_VENV="${PESC_VENV:-$PESC_BUILD/venv}"

PESC_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libsqlitecpp-dev libsqlite3-dev libarchive-dev zlib1g-dev libssl-dev libcurl4-openssl-dev
  libgtest-dev libbenchmark-dev
  # The coordinator's web dashboard and REST API (issue 16): HTTP server and JSON, both header-only.
  libcpp-httplib-dev nlohmann-json3-dev
  clang libclang-rt-14-dev
  python3 pybind11-dev python3-dev python3-venv python3-pytest python3-cloudpickle python3-numpy
  python3-pandas python3-setuptools python3-wheel
  # Progress bars: tqdm; in a notebook text or a widget (test_notebook runs nbclient and nbconvert on a real ipykernel).
  python3-tqdm python3-ipywidgets python3-ipykernel python3-nbclient python3-nbformat python3-nbconvert
  r-base-dev r-cran-rcpp r-cran-testthat r-cran-codetools r-cran-withr r-cran-boot r-cran-progress
  # The R package's future backend (pesc_farm) and the front ends tested on it; Debian has no doFuture.
  r-cran-future r-cran-future.apply r-cran-furrr r-cran-foreach r-cran-iterators
  # Job timelines as figures (res.plot) and SVG to PNG; the Amdahl suite's workloads and peers.
  python3-matplotlib librsvg2-bin python3-sklearn parallel python3-dask python3-distributed
  # Workers sandbox ranks in bubblewrap; isolation_test and the sandbox tests need it.
  bubblewrap
  # The .debs (cpack: dpkg-shlibdeps computes their dependencies) and their units (systemd-analyze verify).
  dpkg-dev systemd
  # The command lines (CLI11) and their man pages (help2man; groff renders them in cli_test).
  libcli11-dev help2man groff-base
  # Pools of pilot workers on Slurm: tests/slurm starts a single-node Slurm with munge.
  slurm-wlm slurmctld slurmd munge
  # The dashboard's browser test (tests/web): Selenium driving headless Chromium.
  python3-selenium chromium chromium-driver
  # The session tests look for pilots left running (pgrep).
  procps
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

# The Python package into a venv over Debian's /usr/bin/python3 (it sees
# Debian's cloudpickle, numpy, pandas, pytest), reusing the extension that
# build_pesc built when configured with -DPESC_BUILD_PYTHON=ON.
install_python_package() {
  [ -x "$PESC_VENV/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$PESC_VENV"
  PESC_CMAKE_BUILD_DIR="$PESC_BUILD" "$PESC_VENV/bin/pip" install --quiet --no-index --no-build-isolation \
    --disable-pip-version-check "$PESC_ROOT"
}
