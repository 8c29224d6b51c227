#!/usr/bin/env bash
# Runs README.md's command blocks as a reader would, in a clean temporary
# directory, so that a README drifting from the code fails the tests.
#
# The blocks it runs are marked in README.md by a comment on the line before
# their fence, `<!-- readme-test: NAME -->`; a marked block that is missing
# fails. Against the built tree: nothing is rebuilt or reinstalled when it
# is already there.
#
#   PESC_BUILD  the C++ build (default: build/)
#   PESC_VENV   the venv with the Python package (default: $PESC_BUILD/venv;
#               installed there as scripts/setup.sh does when missing)
#   R library   $PESC_BUILD/r-library, as tests/r/run.sh installs it
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PESC_BUILD=${PESC_BUILD:-$root/build}
PESC_BUILD=$(cd "$PESC_BUILD" && pwd)
export PESC_VENV=${PESC_VENV:-$PESC_BUILD/venv}
readme="$root/README.md"
# PESC_README_BLOCKS="python r" runs only those.
read -r -a blocks <<<"${PESC_README_BLOCKS:-quickstart loopback cpp python r}"
limit=600  # seconds a block may run

scratch=$(mktemp -d)
group=""  # the process group a block runs in, daemons and all
stop_everything() {
  if [ -n "$group" ]; then kill -TERM -- "-$group" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap stop_everything EXIT

# The fenced block after `<!-- readme-test: NAME -->`, without its fences.
extract() {
  awk -v marker="<!-- readme-test: $1 -->" '
    $0 == marker { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 1 { exit 1 }
    found == 2 && /^```/ { exit 0 }
    found == 2 { print }
    END { if (found != 2) exit 1 }
  ' "$readme"
}

# What the README's examples run: sim.py, sim.R and a native ./a.out.
work="$scratch/work"
mkdir -p "$work" "$scratch/home"
cd "$work"
ln -s "$PESC_BUILD" build
cat >sim.py <<'EOF'
import sys
print("sim.py", " ".join(sys.argv[1:]))
EOF
cat >sim.R <<'EOF'
cat("sim.R", commandArgs(trailingOnly = TRUE), "\n")
EOF
printf '#!/bin/sh\necho "a.out $*"\n' >a.out
chmod +x a.out
export HOME="$scratch/home"  # the loopback coordinator keeps its state under ~/.local/state
export PATH="$PESC_BUILD/daemons:$PATH"
unset PESC_COORDINATOR PESC_TOKEN PESC_TOKEN_FILE PESC_TLS_CA PESC_TLS_CERT PESC_TLS_KEY

# Runs a shell script in a process group of its own; what it leaves running
# in the background is stopped when it ends.
run_in_group() {
  setsid timeout "$limit" bash -euo pipefail "$1" &
  group=$!
  local status=0
  wait "$group" || status=$?
  kill -TERM -- "-$group" 2>/dev/null || true
  group=""
  return "$status"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Did `count` ranks print `line` (after their PESC flags)?
ranks_said() {
  local said
  said=$(grep -c -- "^sim.py .*$2\$" "$1" || true)
  if [ "$said" -ne "$3" ]; then
    echo "expected $3 ranks of sim.py to print \"... $2\", got $said" >&2
    return 1
  fi
}

run_quickstart() {
  extract quickstart >"$scratch/quickstart.sh" || return
  run_in_group "$scratch/quickstart.sh" >"$scratch/quickstart.out" || return
  cat "$scratch/quickstart.out"
  ranks_said "$scratch/quickstart.out" "--parameters 3 0.5" 20 && [ -s results/output.txt ]
}

# The one-machine lab on a free port; after each line that starts a daemon
# in the background, the next waits until the coordinator listens, as a
# person typing would.
run_loopback() {
  local port
  port=$(free_port)
  {
    echo "wait_for_coordinator() { for _ in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.1; done; }"
    extract loopback | sed "s/7070/$port/g" | while IFS= read -r line; do
      echo "$line"
      if [[ "$line" =~ \&[[:space:]]*(#.*)?$ ]]; then echo "wait_for_coordinator"; fi
    done
  } >"$scratch/loopback.sh"
  run_in_group "$scratch/loopback.sh" >"$scratch/loopback.out" || return
  cat "$scratch/loopback.out"
  ranks_said "$scratch/loopback.out" "--parameters 3 0.5" 50
}

# The C++ snippet in a main(), built against an installed pesc with the
# find_package consumer project of tests/install.
run_cpp() {
  local project="$scratch/cpp"
  mkdir -p "$project"
  cp "$root/tests/install/consumer/CMakeLists.txt" "$project/"
  {
    echo "#include <iostream>"
    extract cpp | grep '^#include'
    echo "int main() {"
    echo "  try {"
    extract cpp | grep -v '^#include' || return
    echo "  } catch (const pesc::Error& error) {"
    echo "    std::cerr << error.what() << std::endl;"
    echo "    return 1;"
    echo "  }"
    echo "}"
  } >"$project/main.cc"
  cmake --install "$PESC_BUILD" --prefix "$scratch/prefix" >/dev/null || return
  cmake -S "$project" -B "$project/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null || return
  cmake --build "$project/build" >/dev/null || return
  timeout "$limit" "$project/build/consumer" >"$scratch/cpp.out" && [ -s out/output.txt ]
}

run_python() {
  if ! "$PESC_VENV/bin/python" -c 'import pesc' 2>/dev/null; then
    # shellcheck disable=SC1091  # sourced at run time from the checkout
    (source "$root/scripts/setup.sh" && install_python_package)
  fi
  extract python >"$scratch/snippet.py" || return
  timeout "$limit" "$PESC_VENV/bin/python" "$scratch/snippet.py"
}

run_r() {
  local library="$PESC_BUILD/r-library"
  if ! R_LIBS="$library" Rscript -e 'library(pesc)' >/dev/null 2>&1; then
    mkdir -p "$library"
    (cd "$root" && PESC_BUILD_DIR="$PESC_BUILD" R CMD INSTALL --library="$library" . >/dev/null)
  fi
  extract r >"$scratch/snippet.R" || return
  R_LIBS="$library${R_LIBS:+:$R_LIBS}" timeout "$limit" Rscript "$scratch/snippet.R"
}

passed=0
failed=0
for block in "${blocks[@]}"; do
  if ! extract "$block" >/dev/null; then
    echo "README: no block marked <!-- readme-test: $block --> before a fence" >&2
    failed=$((failed + 1))
    continue
  fi
  echo "README: running the $block block" >&2
  if "run_$block" >"$scratch/$block.log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "README: the $block block failed; its output:" >&2
    sed 's/^/  /' "$scratch/$block.log" >&2
  fi
done
echo "README blocks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
