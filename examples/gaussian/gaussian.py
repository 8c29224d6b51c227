"""One rank of the Gaussian example, as a Python process.

The PESC paper's generator: an LCG (m = 2^31, a = 1103515245, c = 12345)
feeding Box-Muller. Rank r of W generates its contiguous slice of COUNT
normal numbers, writes them as native-endian doubles to
output_dir/normals.bin and prints a one-line summary. The LCG jumps ahead to
the slice in O(log n) steps, so W ranks produce exactly the numbers one rank
does, and exactly those of gaussian.cc (same operations in the same order).

    pesc run --repetitions 5 gaussian.py -- COUNT [SEED]
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

import array
import math
import sys
import time

MODULUS_MASK = (1 << 31) - 1  # m = 2^31, so "mod m" is a mask
MULTIPLIER = 1103515245
INCREMENT = 12345
DEFAULT_SEED = 1
CHUNK = 1 << 16  # normals per write, so memory stays flat however large the slice


def jump(state, steps):
    """The LCG state `steps` steps after `state`, in O(log steps).

    n steps of x -> a x + c are again an affine map x -> A x + C; compose the
    maps for 1, 2, 4, ... steps (squaring: A' = A^2, C' = (A + 1) C) for the
    set bits of `steps`.
    """
    power_mult, power_add = MULTIPLIER, INCREMENT
    mult, add = 1, 0
    while steps > 0:
        if steps & 1:
            mult = (power_mult * mult) & MODULUS_MASK
            add = (power_mult * add + power_add) & MODULUS_MASK
        power_add = ((power_mult + 1) * power_add) & MODULUS_MASK
        power_mult = (power_mult * power_mult) & MODULUS_MASK
        steps >>= 1
    return (mult * state + add) & MODULUS_MASK


def slice_for(count, rank, world_size):
    """[begin, end) of this rank: the first count % world_size ranks get one more."""
    share, extra = divmod(count, world_size)
    return share * rank + min(rank, extra), share * (rank + 1) + min(rank + 1, extra)


def main():
    if not 1 <= len(args.parameters) <= 2:
        parser.error("parameters are COUNT [SEED]")
    count = int(args.parameters[0])
    seed = int(args.parameters[1]) if len(args.parameters) > 1 else DEFAULT_SEED
    if count < 0 or seed < 0 or not 0 <= args.rank < args.world_size:
        parser.error("COUNT and SEED must be non-negative and 0 <= rank < world_size")

    started = time.monotonic()
    begin, end = slice_for(count, args.rank, args.world_size)
    # Normals 2k and 2k+1 are the pair made of uniforms 2k and 2k+1: start at
    # the pair that holds `begin` and drop its first half if it is not ours.
    i = begin & ~1
    state = jump(seed & MODULUS_MASK, i)
    os.makedirs(args.output_dir, exist_ok=True)
    n, mean, m2 = 0, 0.0, 0.0  # Welford, as in gaussian.h, for the same digits
    # Locals: attribute lookups dominate a pure-Python inner loop.
    log, sqrt, cos, sin, tau = math.log, math.sqrt, math.cos, math.sin, math.tau
    a, c, mask, scale = MULTIPLIER, INCREMENT, MODULUS_MASK, 2147483648.0
    chunk = array.array("d")
    with open(os.path.join(args.output_dir, "normals.bin"), "wb") as out:
        while i < end:
            state = (a * state + c) & mask
            u1 = (state + 1) / scale  # in (0, 1], so log never sees 0
            state = (a * state + c) & mask
            u2 = (state + 1) / scale
            radius = sqrt(-2.0 * log(u1))
            angle = tau * u2
            pair = (radius * cos(angle), radius * sin(angle))
            for x in pair[(1 if i < begin else 0):(2 if i + 1 < end else 1)]:
                n += 1
                delta = x - mean
                mean += delta / n
                m2 += delta * (x - mean)
                chunk.append(x)
            i += 2
            if len(chunk) >= CHUNK:
                chunk.tofile(out)
                chunk = array.array("d")
        chunk.tofile(out)
    variance = m2 / n if n else 0.0
    print(f"rank={args.rank} world_size={args.world_size} begin={begin} count={n} "
          f"mean={mean:.9f} variance={variance:.9f} seconds={time.monotonic() - started:.3f}")


if __name__ == "__main__":
    sys.exit(main())
