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
echo "1 passed, 0 failed"
