#!/usr/bin/env bash
# Installs, builds, and runs the main job on the embedded local farm: the
# PESC paper's Gaussian generator as 5 ranks, results back in rank order.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
install_packages
build_pesc -DPESC_BUILD_TESTS=OFF -DPESC_BUILD_BENCHMARKS=OFF
cd "$PESC_ROOT"
echo "pesc: 5 ranks of examples/gaussian/gaussian.py on the embedded local farm" >&2
"$PESC_BUILD/daemons/pesc" run --repetitions 5 --out "$PESC_BUILD/demo-results" examples/gaussian/gaussian.py -- 1000000
echo "pesc: every rank's output_dir is in $PESC_BUILD/demo-results" >&2
