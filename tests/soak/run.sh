#!/usr/bin/env bash
# The soak: builds pesc_soak and the daemons it drives into $PESC_BUILD
# (default build/) and runs it. Every option goes to pesc_soak:
#   tests/soak/run.sh                 # ten minutes of 5000-rank jobs under fire
#   tests/soak/run.sh --minutes 2     # shorter
#   tests/soak/run.sh --help          # all options (--ranks, --slots, --lease-ms, --seed, --verbose, ...)
# PESC_JOBS caps the build's parallelism (default: every core).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/setup.sh"
# An existing build directory keeps whatever else it was configured with;
# the soak needs only the test tree.
configure=(-DPESC_BUILD_TESTS=ON)
if [ ! -f "$PESC_BUILD/build.ninja" ]; then
  install_packages
  configure+=(-G Ninja -DCMAKE_BUILD_TYPE="${PESC_BUILD_TYPE:-RelWithDebInfo}")
fi
cmake -S "$PESC_ROOT" -B "$PESC_BUILD" "${configure[@]}" >/dev/null
ninja -C "$PESC_BUILD" -j "${PESC_JOBS:-$(nproc)}" pesc_soak >&2
exec "$PESC_BUILD/tests/soak/pesc_soak" "$@"
