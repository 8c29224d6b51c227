#!/usr/bin/env bash
# One version, PESC_VERSION in the public header, everywhere it is shown:
# the three executables' --version and the R package's DESCRIPTION (the
# Python package is checked by tests/python/test_version.py).
set -euo pipefail
build_dir="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(sed -n 's/^#define PESC_VERSION "\([0-9.]*\)"$/\1/p' "$root/libpesc/include/pesc/pesc.h")"
[ -n "$version" ] || { echo "pesc.h defines no PESC_VERSION" >&2; exit 1; }
failed=0
expect() {
  if [ "$2" != "$3" ]; then
    echo "$1 says '$2', not '$3'" >&2
    failed=1
  fi
}
expect "pesc --version" "$("$build_dir/daemons/pesc" --version)" "pesc $version"
expect "pesc-coordinator --version" "$("$build_dir/daemons/pesc-coordinator" --version)" "pesc-coordinator $version"
expect "pesc-worker --version" "$("$build_dir/daemons/pesc-worker" --version)" "pesc-worker $version"
expect "DESCRIPTION" "$(sed -n 's/^Version: //p' "$root/DESCRIPTION")" "$version"
[ "$failed" -eq 0 ] && echo "1 passed, 0 failed"
