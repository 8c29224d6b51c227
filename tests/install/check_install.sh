#!/usr/bin/env bash
# Installs a built pesc into a scratch prefix and builds a user's program
# against it twice: with find_package(pesc) and with pkg-config.
set -euo pipefail
build_dir="$1"
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$here/consumer" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/cmake-build" >/dev/null
"$scratch/cmake-build/consumer"

libdir="$(dirname "$(find "$scratch/prefix" -name pesc.pc)")"
export PKG_CONFIG_PATH="$libdir"
# shellcheck disable=SC2046
g++ -o "$scratch/pkg-consumer" "$here/consumer/main.cc" $(pkg-config --cflags --libs pesc) \
  -Wl,-rpath,"$(pkg-config --variable=libdir pesc)"
"$scratch/pkg-consumer"

# The installed commands start from the prefix alone, as a user runs them.
for command in pesc pesc-coordinator pesc-worker; do
  if env -u LD_LIBRARY_PATH ldd "$scratch/prefix/bin/$command" | grep "not found"; then
    echo "installed $command cannot find its libraries" >&2
    exit 1
  fi
done
printf '#!/bin/sh\necho "rank $PESC_RANK"\n' >"$scratch/rank.sh"
chmod +x "$scratch/rank.sh"
ranks="$(cd "$scratch" && env -u LD_LIBRARY_PATH -u PESC_COORDINATOR "$scratch/prefix/bin/pesc" run --repetitions 2 rank.sh)"
if [ "$ranks" != "$(printf 'rank 0\nrank 1')" ]; then
  echo "installed pesc run printed: $ranks" >&2
  exit 1
fi
# The man pages (built when help2man was there at configure time).
if [ -d "$build_dir/daemons/man1" ]; then
  for page in pesc pesc-coordinator pesc-worker; do
    [ -f "$scratch/prefix/share/man/man1/$page.1" ] || { echo "cmake --install left out $page.1" >&2; exit 1; }
  done
fi
echo "1 passed, 0 failed"
