#!/usr/bin/env bash
# Installs, builds, and runs every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
install_packages
build_pesc -DPESC_BUILD_TESTS=ON -DPESC_BUILD_BENCHMARKS=ON -DPESC_BUILD_EXAMPLES=ON
cd "$PESC_BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 600
