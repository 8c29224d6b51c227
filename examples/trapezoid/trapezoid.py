"""One rank of the trapezoid example, as a Python process.

The composite trapezoid rule for the integral of sin(x)^2 over [-1, 1] with N
intervals; rank r of W sums its contiguous share of the intervals and prints

    partial rank=R world_size=W intervals=LO..HI sum=S

The partial sums of all ranks add up to the whole rule (see README.md).

    pesc run --repetitions 10 trapezoid.py -- N
"""
import argparse,os
parser=argparse.ArgumentParser()
parser.add_argument("--app_dir","-a",default=f"{os.getcwd()}/")
parser.add_argument("--checkpoint_dir","-c",default=f"{os.getcwd()}/checkpoint")
parser.add_argument("--output_dir","-o",default=f"{os.getcwd()}/output")
parser.add_argument("--rank","-r",type=int, default=0)
parser.add_argument("--world_size","-w",type=int, default=1)
parser.add_argument("--master_addr","-d",default="127.0.0.1")
parser.add_argument("--master_port","-t",type=int, default=9000)
parser.add_argument("--parameters","-p",nargs="*",default=[])
args=parser.parse_args()

import math

LOWER, UPPER = -1.0, 1.0

if len(args.parameters) != 1 or int(args.parameters[0]) < 1:
    parser.error("the one parameter is N, a positive number of intervals")
if not 0 <= args.rank < args.world_size:
    parser.error("need 0 <= rank < world_size")
n = int(args.parameters[0])

# This rank's intervals [lo, hi): the first n % world_size ranks take one more.
share, extra = divmod(n, args.world_size)
lo = share * args.rank + min(args.rank, extra)
hi = share * (args.rank + 1) + min(args.rank + 1, extra)
h = (UPPER - LOWER) / n
sin = math.sin

# Interval i contributes h (f(x_i) + f(x_i+1)) / 2: inner points weigh h, the
# slice's two ends h / 2 (a shared end is counted half by each side). x_i is
# computed from i, not by adding h repeatedly, so no error accumulates; fsum
# is exact, so rounding does not swamp the rule's own error at large n.
total = 0.0
if lo < hi:
    total = math.fsum((0.5 * sin(LOWER + lo * h) ** 2,
                       math.fsum(sin(LOWER + i * h) ** 2 for i in range(lo + 1, hi)),
                       0.5 * sin(LOWER + hi * h) ** 2))
print(f"partial rank={args.rank} world_size={args.world_size} intervals={lo}..{hi} sum={h * total!r}")
