#!/usr/bin/env bash
# Builds the .debs (cpack -G DEB), installs them with dpkg as a lab admin
# would, runs a job on the INSTALLED coordinator, worker and CLI (started
# directly: CI has no systemd), then purges them: the machine is left as it was.
# Root only; exits 77 (skipped) otherwise.
set -euo pipefail
build_dir="$(cd "$1" && pwd)"
packages=(pesc pesc-worker pesc-coordinator libpesc-dev libpesc0)
accounts=(pesc pesc-coordinator)

skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "installing packages needs root"
for tool in dpkg dpkg-deb dpkg-shlibdeps cpack; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install dpkg-dev cmake)"
done
for package in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "installed"; then
    skip "$package is installed already; this test would remove it"
  fi
done

scratch="$(mktemp -d)"
chmod 0711 "$scratch"  # ranks run as the user pesc and must reach the work dir
new_accounts=()
for account in "${accounts[@]}"; do
  getent passwd "$account" >/dev/null || new_accounts+=("$account")
done
daemons=()
clean_up() {
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${daemons[@]}"; do wait "$pid" 2>/dev/null || true; done
  dpkg --purge "${packages[@]}" >"$scratch/purge.log" 2>&1 || cat "$scratch/purge.log" >&2
  for account in "${new_accounts[@]}"; do
    if getent passwd "$account" >/dev/null; then userdel "$account" || echo "could not remove account $account" >&2; fi
    if getent group "$account" >/dev/null; then groupdel "$account" || echo "could not remove group $account" >&2; fi
  done
  rm -rf "$scratch"
}
trap clean_up EXIT
trap 'exit 1' INT TERM
fail() { echo "FAILED: $*" >&2; exit 1; }

(cd "$build_dir" && cpack -G DEB -B "$scratch/debs" >"$scratch/cpack.log" 2>&1) || { cat "$scratch/cpack.log" >&2; fail "cpack"; }
debs=("$scratch"/debs/*.deb)
[ "${#debs[@]}" -eq "${#packages[@]}" ] || fail "cpack made ${#debs[@]} .debs, not ${#packages[@]}: ${debs[*]}"
dpkg -i "${debs[@]}" >"$scratch/install.log" 2>&1 || { cat "$scratch/install.log" >&2; fail "dpkg -i"; }

for package in "${packages[@]}"; do
  copyright="/usr/share/doc/$package/copyright"
  grep -q '^License: MIT$' "$copyright" || fail "$copyright does not say License: MIT"
done
dpkg-query -W -f='${Depends}\n' pesc-worker | grep -q 'libpesc0 (= ' || fail "pesc-worker does not depend on libpesc0"
dpkg-query -W -f='${Depends}\n' libpesc0 | grep -q 'libgrpc' || fail "libpesc0's dependencies were not computed"
for account in "${accounts[@]}"; do
  getent passwd "$account" >/dev/null || fail "installing made no account $account"
done
for unit in pesc-coordinator pesc-worker; do
  [ -f "/usr/lib/systemd/system/$unit.service" ] || fail "no unit $unit.service"
  grep -q "^ExecStart=/usr/bin/$unit " "/usr/lib/systemd/system/$unit.service" || fail "$unit.service runs no /usr/bin/$unit"
  [ -f "/etc/default/$unit" ] || fail "no /etc/default/$unit"
  dpkg-query --control-show "$unit" conffiles | grep -q "/etc/default/$unit" || fail "/etc/default/$unit is no conffile"
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no /usr/lib/systemd/system/pesc-coordinator.service /usr/lib/systemd/system/pesc-worker.service
fi

# The installed commands, from /usr alone.
unset LD_LIBRARY_PATH PESC_COORDINATOR PESC_TOKEN PESC_TOKEN_FILE
/usr/bin/pesc-coordinator --listen 127.0.0.1:0 --state-dir "$scratch/state" >"$scratch/coordinator.log" 2>&1 &
daemons+=($!)
for _ in $(seq 100); do
  address="$(sed -n 's/^pesc-coordinator listening on \([^,]*\),.*/\1/p' "$scratch/coordinator.log")"
  [ -n "$address" ] && break
  sleep 0.1
done
[ -n "$address" ] || { cat "$scratch/coordinator.log" >&2; fail "the coordinator did not start"; }
export PESC_COORDINATOR="$address"
/usr/bin/pesc --token-file "$scratch/state/admin.token" worker-token >"$scratch/worker.token"
/usr/bin/pesc-worker --token-file "$scratch/worker.token" --work-dir "$scratch/work" --slots 2 --owners-first=false \
  >"$scratch/worker.log" 2>&1 &
daemons+=($!)

printf '#!/bin/sh\necho "rank $PESC_RANK as $(id -un)"\n' >"$scratch/rank.sh"
chmod +x "$scratch/rank.sh"
ranks="$(cd "$scratch" && timeout 300 /usr/bin/pesc --token-file "$scratch/state/admin.token" run --repetitions 20 rank.sh)" ||
  { cat "$scratch/worker.log" >&2; fail "pesc run"; }
expected="$(for rank in $(seq 0 19); do echo "rank $rank as pesc"; done)"
[ "$ranks" = "$expected" ] || { cat "$scratch/worker.log" >&2; fail "the installed pesc run printed: $ranks"; }
echo "1 passed, 0 failed"
