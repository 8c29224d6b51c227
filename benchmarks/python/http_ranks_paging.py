#!/usr/bin/env python3
"""Pages through a big job's ranks over the REST API and reports latency and the coordinator's memory.

    benchmarks/python/http_ranks_paging.py --state-dir DIR --job JOB [--pid COORDINATOR_PID]

DIR is a running coordinator's state dir (it serves --http); its admin.token
is used. Every page is GET /api/v1/jobs/JOB/ranks?offset=O&limit=500 in rank
order; the baseline, measured in the same run, is GET /api/v1/me, a request
that reads nothing from the store. The coordinator's resident memory is read
from /proc before and after, to show that paging never holds the job whole.
"""

import argparse
import json
import statistics
import time
import urllib.request
from pathlib import Path


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed_get(url: str, token: str) -> tuple[float, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - start, body


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (f"{name}: n={len(seconds)} median={statistics.median(seconds) * 1e3:.2f} ms "
            f"p95={p95 * 1e3:.2f} ms max={ordered[-1] * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--pid", type=int, help="the coordinator's pid, for its memory")
    parser.add_argument("--limit", type=int, default=500)
    options = parser.parse_args()
    base = (options.state_dir / "http.addr").read_text().strip()
    token = (options.state_dir / "admin.token").read_text().strip()

    baseline = [timed_get(f"{base}/api/v1/me", token)[0] for _ in range(50)]
    before = rss_kb(options.pid) if options.pid else 0
    pages, offset, total, ranks_seen = [], 0, None, 0
    while total is None or offset < total:
        elapsed, body = timed_get(f"{base}/api/v1/jobs/{options.job}/ranks?offset={offset}&limit={options.limit}",
                                  token)
        page = json.loads(body)
        total = page["total"]
        ranks_seen += len(page["ranks"])
        pages.append(elapsed)
        offset += options.limit
    after = rss_kb(options.pid) if options.pid else 0
    deepest = [timed_get(f"{base}/api/v1/jobs/{options.job}/ranks?offset={total - options.limit}"
                         f"&limit={options.limit}", token)[0] for _ in range(20)]
    filtered = [timed_get(f"{base}/api/v1/jobs/{options.job}/ranks?status=done&offset={total // 2}"
                          f"&limit={options.limit}", token)[0] for _ in range(20)]

    print(f"job {options.job}: {total} ranks, {ranks_seen} read in {len(pages)} pages of {options.limit}")
    print(summary("baseline GET /api/v1/me", baseline))
    print(summary(f"GET ranks?limit={options.limit}, every page in order", pages))
    print(summary("the last page (deepest offset)", deepest))
    print(summary("?status=done from the middle", filtered))
    print(f"ratio page/baseline (medians): {statistics.median(pages) / statistics.median(baseline):.1f}x")
    if options.pid:
        print(f"coordinator RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after paging "
              f"(+{(after - before) / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
