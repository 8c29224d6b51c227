#!/usr/bin/env bash
# The R package's documented routes, as a new user takes them, in a clean
# clone of this checkout's HEAD (so a file that git does not carry, or a build
# left in src/, cannot make them pass):
#
#   1. R CMD INSTALL .  with no PESC_BUILD_DIR: configure builds a static
#      libpesc inside the package; the package must then load and run a job.
#   2. R CMD build . && R CMD check --no-manual pesc_*.tar.gz: the tarball
#      carries libpesc's sources and builds them the same way, with 0 errors
#      and 0 warnings (the notes it prints are explained in the README).
#
# Each route compiles libpesc from scratch: about 2 minutes on two cores
# (2.5 CPU-minutes; PESC_BUILD_JOBS, default all cores), so 4 to 5 minutes for
# both; with CMAKE_CXX_COMPILER_LAUNCHER=ccache in the environment the check
# reuses the install's objects and takes under a minute.
# PESC_R_ROUTES=install skips the check; the work directory is removed unless
# PESC_KEEP_ROUTES=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
routes=${PESC_R_ROUTES:-install,check}
work=$(mktemp -d "${TMPDIR:-/tmp}/pesc-r-routes.XXXXXX")
[ "${PESC_KEEP_ROUTES:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
# The plain route: nothing of the shared route may leak in.
unset PESC_BUILD_DIR PESC_SOURCE_DIR
# Where the caller compiles through ccache, the check's build (under
# pesc.Rcheck/) reuses the install's objects: paths relative to $work.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$work}

git clone -q "$root" "$work/clone"
mkdir -p "$work/library"

smoke='
  library(pesc)
  vals <- farm(function(rank, n) rank * n, repetitions = 3, params = list(n = 2))$values
  stopifnot(identical(unlist(vals), c(0, 2, 4)))
  cat("routes.sh: the package loads and runs a job on the embedded farm\n")
'

if [[ ,$routes, == *,install,* ]]; then
  echo "routes.sh: R CMD INSTALL . in a clean clone" >&2
  start=$SECONDS
  (cd "$work/clone" && R CMD INSTALL --library="$work/library" .)
  R_LIBS="$work/library${R_LIBS:+:$R_LIBS}" Rscript -e "$smoke"
  echo "routes.sh: plain install took $((SECONDS - start)) s" >&2
fi

if [[ ,$routes, == *,check,* ]]; then
  echo "routes.sh: R CMD build . && R CMD check --no-manual in a clean clone" >&2
  start=$SECONDS
  (cd "$work" && R CMD build clone)
  tarball=$(ls "$work"/pesc_*.tar.gz)
  (cd "$work" && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual "$tarball") || {
    cat "$work"/pesc.Rcheck/00install.out >&2 2>/dev/null || true
    exit 1
  }
  log="$work/pesc.Rcheck/00check.log"
  if grep -Eq '^Status: .*(ERROR|WARNING)' "$log"; then
    echo "routes.sh: R CMD check reported errors or warnings" >&2
    exit 1
  fi
  echo "routes.sh: R CMD check: $(grep '^Status:' "$log") in $((SECONDS - start)) s" >&2
fi
