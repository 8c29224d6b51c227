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

echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
