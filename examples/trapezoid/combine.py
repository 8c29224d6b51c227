#!/usr/bin/env python3
"""Adds up the partial sums of the trapezoid ranks and compares the total with
the exact integral of sin(x)^2 over [-1, 1], 1 - sin(2)/2.

    pesc run --repetitions 10 examples/trapezoid/trapezoid.py -- 1000000 | python3 examples/trapezoid/combine.py

Reads the joined output (stdin or the files named), e.g. `pesc run`'s stdout
or the output.txt that `pesc run --out DIR` saves.
"""
import fileinput
import math
import re
import sys

PARTIAL = re.compile(r"^partial rank=(\d+) world_size=(\d+) intervals=(\d+)\.\.(\d+) sum=(\S+)$")

partials = {}
world_size = None
for line in fileinput.input():
    match = PARTIAL.match(line.strip())
    if match:
        partials[int(match[1])] = float(match[5])
        world_size = int(match[2])

# A missing rank would silently make the sum wrong, so check for all of them.
if world_size is None or sorted(partials) != list(range(world_size)):
    sys.exit(f"combine: expected ranks 0..{world_size}-1, found {sorted(partials)}")
total = math.fsum(partials.values())
exact = 1 - math.sin(2) / 2
print(f"ranks={world_size} integral={total!r} exact={exact!r} error={total - exact:.3e}")
