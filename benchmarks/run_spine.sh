#!/bin/sh
# Runs the spine benchmark of an existing build and prints its figures next
# to their targets. Builds nothing.
#
#   benchmarks/run_spine.sh BUILD_DIR [benchmark flags...]
#   benchmarks/run_spine.sh build-bench --benchmark_filter=Latency
#
# Build first, e.g.:
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release
#   ninja -C build-bench spine_benchmark pesc-coordinator pesc-worker
set -eu

if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [benchmark flags...]" >&2
  exit 2
fi
build_dir=$1
shift
binary=$build_dir/benchmarks/spine_benchmark
if [ ! -x "$binary" ]; then
  echo "$0: no $binary; build the spine_benchmark target first" >&2
  exit 1
fi

json=$(mktemp "${TMPDIR:-/tmp}/pesc-spine-XXXXXX.json")
trap 'rm -f "$json"' EXIT INT TERM

"$binary" --benchmark_out="$json" --benchmark_out_format=json "$@"

if ! command -v python3 >/dev/null 2>&1; then
  echo "(python3 not found: no summary; the figures are above)"
  exit 0
fi

python3 - "$json" <<'EOF'
import json, sys

with open(sys.argv[1]) as f:
    runs = json.load(f)["benchmarks"]

def pick(prefix):
    """The mean over repetitions if there were several, else the one run."""
    matching = [r for r in runs if r["name"].startswith(prefix + "/") or r["name"] == prefix]
    means = [r for r in matching if r.get("aggregate_name") == "mean"]
    plain = [r for r in matching if r.get("run_type", "iteration") == "iteration" and not r.get("error_occurred")]
    return (means or plain or [None])[0], [r for r in matching if r.get("error_occurred")]

def ms(run):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[run["time_unit"]]
    return run["real_time"] * scale

def verdict(ok):
    return "ok  " if ok else "MISS"

print()
print("pesc spine figures")
print("------------------")
for prefix in ("BM_BareSpawn", "BM_FarmThroughput/loopback", "BM_FarmThroughput/embedded",
               "BM_OneRankLatency/embedded", "BM_OneRankLatency/loopback", "BM_Submit100k"):
    run, errors = pick(prefix)
    for e in errors:
        print(f"ERROR {prefix}: {e.get('error_message', '')}")
    if run is None:
        continue
    if prefix == "BM_BareSpawn":
        print(f"      bare spawn, 2 in flight       {run['ranks_per_s']:8.0f} runs/s")
    elif prefix.startswith("BM_FarmThroughput"):
        ratio = run["farm_over_bare"]
        where = prefix.split("/")[1]
        print(f"{verdict(ratio >= 0.70)}  throughput {where:9s} 2000 ranks"
              f" {run['ranks_per_s']:8.0f} ranks/s  bare {run['bare_ranks_per_s']:.0f}/s"
              f"  farm/bare {ratio:.2f} (target >= 0.70)")
    elif prefix.startswith("BM_OneRankLatency"):
        where = prefix.split("/")[1]
        mean = ms(run)
        print(f"{verdict(mean < 5.0)}  one-rank latency {where:9s} mean {mean:6.2f} ms"
              f"  p50 {run['p50_ms']:.2f}  p90 {run['p90_ms']:.2f}  p99 {run['p99_ms']:.2f}"
              f"  max {run['max_ms']:.2f} (target mean < 5 ms)")
    else:
        seconds = ms(run) / 1e3
        print(f"{verdict(seconds < 2.0)}  100k-rank submit                {seconds:6.2f} s"
              f"  (target < 2 s); cancel {run['cancel_s']:.2f} s")
        print(f"{verdict(run['hwm_mb'] < 200)}  coordinator memory, queued     RSS {run['rss_mb']:.0f} MB"
              f"  peak {run['hwm_mb']:.0f} MB  idle {run['idle_rss_mb']:.0f} MB (target < 200 MB)")
EOF
