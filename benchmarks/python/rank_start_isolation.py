"""What isolation adds to starting a rank: posix_spawn + wait of /bin/true, plain
and inside bubblewrap with the mounts pesc-worker gives a rank (with and
without a network namespace of its own).

    /usr/bin/python3 benchmarks/python/rank_start_isolation.py [N]
"""

import os
import sys
import time

SANDBOX = ["/usr/bin/bwrap", "--die-with-parent", "--unshare-all",
           "--ro-bind-try", "/usr", "/usr", "--ro-bind-try", "/etc", "/etc", "--ro-bind-try", "/opt", "/opt",
           "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib",
           "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
           "--chdir", "/", "--"]


def per_rank_ms(argv, n):
    start = time.perf_counter()
    for _ in range(n):
        os.waitpid(os.posix_spawn(argv[0], argv, os.environ), 0)
    return (time.perf_counter() - start) / n * 1000


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with_network = SANDBOX[:3] + ["--share-net"] + SANDBOX[3:]
    for label, argv in [("plain", ["/bin/true"]), ("bubblewrap, no network", SANDBOX + ["/bin/true"]),
                        ("bubblewrap, --network", with_network + ["/bin/true"])]:
        print(f"{label:24s} {per_rank_ms(argv, n):7.2f} ms per rank (N={n})")


if __name__ == "__main__":
    main()
