#!/usr/bin/env bash
# Installs the R package from this checkout into a library under the build
# directory and runs its testthat suite; exits non-zero on any failure.
#
#   PESC_BUILD      the C++ build (default: build/); its daemons/ are used by
#                   the tests against real daemons, which skip without them.
#   PESC_BUILD_DIR  a CMake build for libpesc to reuse (see ../../configure);
#                   default: a static libpesc built in src/pesc-build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PESC_BUILD=${PESC_BUILD:-$root/build}
library="$PESC_BUILD/r-library"
mkdir -p "$library"

cd "$root"
R CMD INSTALL --library="$library" .
export R_LIBS="$library${R_LIBS:+:$R_LIBS}"
if [ ! -x "$PESC_BUILD/daemons/pesc-coordinator" ]; then
  echo "run.sh: no daemons in $PESC_BUILD; the tests against real daemons will be skipped" >&2
  unset PESC_BUILD
fi
cd "$root/tests"
Rscript -e '
  library(testthat)
  library(pesc)
  options(testthat.progress.max_fails = 1000)
  results <- test_dir("testthat", package = "pesc", load_package = "installed",
                      reporter = CheckReporter$new(), stop_on_failure = FALSE)
  df <- as.data.frame(results)
  cat(sprintf("R tests: %d passed, %d failed, %d skipped, %d errors\n",
              sum(df$passed), sum(df$failed), sum(df$skipped), sum(df$error)))
  if (any(df$failed > 0) || any(df$error)) quit(status = 1)
'
