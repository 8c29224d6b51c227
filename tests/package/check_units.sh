#!/usr/bin/env bash
# The systemd units as `cmake --install` writes them, checked by
# systemd-analyze verify (not the man pages: the prefix is not on MANPATH); exits 77 (skipped) without systemd-analyze.
set -euo pipefail
build_dir="$1"
command -v systemd-analyze >/dev/null || { echo "skipped: no systemd-analyze (apt-get install systemd)"; exit 77; }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

units=()
for daemon in pesc-coordinator pesc-worker; do
  cmake --install "$build_dir" --prefix "$scratch/prefix" --component "${daemon#pesc-}" >/dev/null
  unit="$scratch/prefix/lib/systemd/system/$daemon.service"
  grep -q "^ExecStart=$scratch/prefix/bin/$daemon " "$unit" || { echo "$unit runs no $daemon of the prefix" >&2; exit 1; }
  grep -q "^EnvironmentFile=-$scratch/prefix/etc/default/$daemon$" "$unit" || { echo "$unit reads no config of the prefix" >&2; exit 1; }
  [ -f "$scratch/prefix/etc/default/$daemon" ] || { echo "no etc/default/$daemon installed" >&2; exit 1; }
  units+=("$unit")
done
# It only warns of an unknown key or a bad value: any word from it fails.
complaints="$(systemd-analyze verify --man=no "${units[@]}" 2>&1)" || { echo "$complaints" >&2; exit 1; }
[ -z "$complaints" ] || { echo "systemd-analyze verify: $complaints" >&2; exit 1; }
echo "1 passed, 0 failed"
