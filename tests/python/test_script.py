"""Script mode: files run as PESC runs them, with the thesis's header, outputs back in rank order."""

import textwrap
from pathlib import Path

import pytest

import pesc

# The thesis's header, as published, shared with the C++ tests.
HEADER = (Path(__file__).resolve().parents[1] / "data" / "pesc_header.py").read_text()


def script(tmp_path, body, name="sim.py"):
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def test_header_flags_outputs_and_files(tmp_path, coordinator):
    sim = script(tmp_path, '''\
        print(f"rank {args.rank} of {args.world_size} params {args.parameters}")
        with open(os.path.join(args.output_dir, "data.txt"), "w") as f:
            f.write(str(args.rank * 10))
        ''')
    res = pesc.run(sim, repetitions=4, params=[3, 0.5], coordinator=coordinator, progress=False, slots=2)
    assert res.ok and len(res) == 4 and res.failed == []
    assert res.output == "".join(f"rank {r} of 4 params ['3', '0.5']\n" for r in range(4))
    assert res[2].output == "rank 2 of 4 params ['3', '0.5']\n"
    assert res[-1].rank == 3 and [r.rank for r in res] == [0, 1, 2, 3]
    assert res[3].exit_code == 0 and res[3].status == "succeeded" and res[3].duration >= 0 and res[3].worker
    assert res.read_file(2, "data.txt") == b"20"
    frame = res.to_pandas()
    assert list(frame["rank"]) == [0, 1, 2, 3] and set(frame["exit_code"]) == {0}
    res.save(tmp_path / "out")
    assert (tmp_path / "out" / "rank_1" / "data.txt").read_text() == "10"
    assert (tmp_path / "out" / "output.txt").read_text() == res.output


def test_failed_ranks_are_reported_with_output(tmp_path, coordinator):
    sim = script(tmp_path, '''\
        print("odd" if args.rank % 2 else "even")
        raise SystemExit(args.rank % 2 * 3)
        ''')
    res = pesc.run(sim, 4, coordinator=coordinator, progress=False, slots=2)
    assert not res.ok
    assert [(r.rank, r.exit_code, r.output) for r in res.failed] == [(1, 3, "odd\n"), (3, 3, "odd\n")]


def test_ranks_finishing_out_of_order_come_back_in_rank_order(tmp_path, coordinator):
    sim = script(tmp_path, '''\
        import time
        time.sleep(0.4 * (args.world_size - args.rank))
        print(args.rank)
        ''')
    farm = pesc.Farm("python", coordinator, slots=2)
    job = farm.map(sim, 4)
    completed = [r.rank for r in job.as_completed()]
    assert sorted(completed) == [0, 1, 2, 3] and completed != [0, 1, 2, 3]
    res = job.wait(progress=False)
    assert res.output == "0\n1\n2\n3\n"
    ordered = farm.map(sim, 4)
    assert [r.rank for r in ordered] == [0, 1, 2, 3]
    assert job.done() and job.results() is res


def test_lab_options_reach_the_farm(tmp_path):
    """A retried rank, a timeout and a shared file, through the Python API."""
    (tmp_path / "data.txt").write_text("shared bytes\n")
    counts = tmp_path / "counts"
    counts.mkdir()
    script = tmp_path / "flaky.sh"
    script.write_text(
        'f="$PESC_PARAMETER_0/$PESC_RANK"; echo x >> "$f"\n'
        'if [ "$PESC_RANK" = 1 ] && [ "$(wc -l < "$f")" -le 1 ]; then exit 3; fi\n'
        'cat data.txt\n')
    res = pesc.run(str(script), repetitions=2, params=[str(counts)], progress=False, slots=2,
                   max_attempts=2, shared=[str(tmp_path / "data.txt")])
    assert res.ok
    assert res.output == "shared bytes\nshared bytes\n"
    hang = tmp_path / "hang.sh"
    hang.write_text("sleep 30\n")
    res = pesc.run(str(hang), repetitions=1, progress=False, timeout=0.5)
    assert not res.ok


def test_limits_kill_and_report_a_rank(tmp_path):
    """Per-rank limits through the Python API: memory and output size killed and said so."""
    hog = tmp_path / "hog.sh"
    hog.write_text("exec /usr/bin/python3 -c \"import time; b = b'x' * (256 << 20); time.sleep(5)\"\n")
    res = pesc.run(str(hog), repetitions=1, progress=False, memory="64M", open_files=64, processes=32)
    assert not res.ok and res[0].limit_exceeded == "memory"
    assert "memory limit of 64 MiB" in res[0].output
    spill = tmp_path / "spill.sh"
    spill.write_text('head -c 3000000 /dev/zero > "$PESC_OUTPUT_DIR/big"\n')
    res = pesc.run(str(spill), repetitions=1, progress=False, output_size=1 << 20, cpu_time=10)
    assert res[0].limit_exceeded == "output"
    fine = pesc.run(str(spill), repetitions=1, progress=False, output_size="10M", network=True)
    assert fine.ok and fine[0].limit_exceeded == ""
    with pytest.raises(pesc.SubmitError, match="not a size"):
        pesc.run(str(spill), repetitions=1, progress=False, memory="lots")
