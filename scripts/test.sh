#!/usr/bin/env bash
# Installs, builds, and runs every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
install_packages
build_pesc -DPESC_BUILD_TESTS=ON -DPESC_BUILD_BENCHMARKS=ON -DPESC_BUILD_EXAMPLES=ON \
  -DPESC_BUILD_PYTHON=ON -DPython3_EXECUTABLE=/usr/bin/python3

passed=0
failed=0
suite() {
  local name="$1"
  shift
  echo "pesc: running the $name tests" >&2
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "pesc: the $name tests failed" >&2; fi
}

# C++: unit, integration over real daemons, CLI, install.
suite C++ ctest --test-dir "$PESC_BUILD" --output-on-failure -j "$(nproc)" --timeout 600

# Python: the package installed into the venv, against the embedded farm and
# this build's daemons. pytest's 5 (nothing collected) means a broken setup.
run_pytest() {
  install_python_package
  local status=0
  PESC_COORDINATOR_BIN="$PESC_BUILD/daemons/pesc-coordinator" PESC_WORKER_BIN="$PESC_BUILD/daemons/pesc-worker" \
    "$PESC_VENV/bin/python" -m pytest -q -p no:cacheprovider "$PESC_ROOT/tests/python" || status=$?
  if [ "$status" -eq 5 ]; then echo "pesc: pytest collected no tests from tests/python" >&2; fi
  return "$status"
}
suite Python run_pytest

# R: the package installed from this checkout over this build's libpesc.
suite R env PESC_BUILD="$PESC_BUILD" PESC_BUILD_DIR="$PESC_BUILD" "$PESC_ROOT/tests/r/run.sh"
# R's first commands as the README gives them, in a clean clone: the plain
# R CMD INSTALL . (a static libpesc built inside the package) and R CMD check
# of the R CMD build tarball, 0 errors and 0 warnings. Each builds libpesc
# again (minutes); PESC_R_ROUTES=install runs only the first, =none neither.
suite "R routes" "$PESC_ROOT/tests/r/routes.sh"

# README: its marked command blocks (quick start, the one-machine lab on
# loopback, C++, Python, R) run as written, against this build.
suite README env PESC_BUILD="$PESC_BUILD" PESC_VENV="$PESC_VENV" "$PESC_ROOT/tests/readme/run_readme.sh"

# Fuzz: each libFuzzer target in tests/fuzz for PESC_FUZZ_SECONDS (60), in a
# clang build with ASan and UBSan beside the main one. A crash fails the
# suite; its input is left in the fuzz build as crash-<target>-*.
run_fuzz_smoke() {
  local fuzz_build="${PESC_FUZZ_BUILD:-$PESC_BUILD-fuzz}"
  local sanitizers="-fsanitize=fuzzer-no-link,address,undefined"
  CC=clang CXX=clang++ cmake -S "$PESC_ROOT" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPESC_BUILD_FUZZ=ON -DPESC_BUILD_TESTS=OFF -DPESC_BUILD_BENCHMARKS=OFF -DPESC_BUILD_EXAMPLES=OFF \
    -DCMAKE_C_FLAGS="$sanitizers" -DCMAKE_CXX_FLAGS="$sanitizers" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null || return 1
  local targets=(archive_fuzz domain_fuzz request_fuzz runner_answer_fuzz)
  ninja -C "$fuzz_build" -j "$(nproc)" "${targets[@]}" || return 1
  local status=0 target corpus
  for target in "${targets[@]}"; do
    corpus="$(mktemp -d)"
    "$fuzz_build/tests/fuzz/$target" -max_total_time="${PESC_FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$fuzz_build/crash-$target-" "$corpus" \
      "$PESC_ROOT/tests/fuzz/corpus/${target%_fuzz}" 2>"$fuzz_build/$target.log" || {
      status=1
      echo "pesc: $target found a crash; see $fuzz_build/$target.log" >&2
    }
    grep -E "^stat::number_of_executed_units" "$fuzz_build/$target.log" | sed "s/^/$target: /" >&2 || true
    rm -rf "$corpus"
  done
  return "$status"
}
suite fuzz run_fuzz_smoke

# Web: the dashboard in headless Chromium (Selenium) against this build's
# daemons; its screenshots land in $PESC_BUILD/test-output/web.
suite web env PESC_BUILD="$PESC_BUILD" PESC_COORDINATOR_BIN="$PESC_BUILD/daemons/pesc-coordinator" \
  PESC_WORKER_BIN="$PESC_BUILD/daemons/pesc-worker" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$PESC_ROOT/tests/web"

echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
