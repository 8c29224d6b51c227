"""Function-mode rank runner, copied into each job's process directory as runner.py.

Runs on a worker as ``python3 runner.py <PESC flags>``: loads the pickled
function and the arguments from the directory beside it, calls it for a rank,
and pickles ``("ok", value)`` or ``("error", summary, traceback_text)`` into
``$PESC_OUTPUT_DIR/result.pkl``. Needs only python3 and cloudpickle.

With ``PESC_RUNNER_FDS`` set, the worker keeps this interpreter warm and feeds
it rank after rank over the runner protocol (libpesc/executor/warm_runner.h):
a line ``rank<TAB>r<TAB>output_dir<TAB>checkpoint_dir`` on the first
descriptor, answered by ``done<TAB>status`` on the second, or, for a record
of at most 1 MiB, by ``done<TAB>status<TAB>result.pkl<TAB>size`` and the
record's bytes: the worker adds it to the rank's output as result.pkl, which
spares a file per rank. Without it, the rank is the one in ``PESC_RANK`` and
the process exits when it is done.
"""
import os
import pickle
import sys
import traceback

RESULT = "result.pkl"
PIPED_MAX = 1 << 20  # kMaxPipedFileBytes in libpesc/executor/warm_runner.h
HERE = os.path.dirname(os.path.abspath(__file__))


def _pickled(record):
    return pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


def _write(output_dir, data):
    with open(os.path.join(output_dir, RESULT), "wb") as stream:
        stream.write(data)


def _error_record(exc):
    """("error", summary, traceback text, the pickled exception or None when it cannot be pickled)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        raised = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(raised)
    except Exception:
        raised = None
    return ("error", f"{type(exc).__name__}: {exc}", text, raised)


def _load(path):
    with open(os.path.join(HERE, path), "rb") as stream:
        return _unpickled(stream.read())


def _unpickled(data):
    """pickle.loads, saying which module this worker's Python lacks when that is why it fails."""
    try:
        return pickle.loads(data)
    except ModuleNotFoundError as exc:
        raise RuntimeError("the function or its arguments need the module %r, which %s on this worker cannot "
                           "import: install it there, or start the worker with --interpreter python=PYTHON for "
                           "a Python that has it (modules in your own .py files travel with the function)"
                           % (exc.name, sys.executable)) from None


_SHARED_ARGS = []  # the bytes of args/all.pkl, read once per interpreter


def _args_for(rank, meta):
    """A fresh copy of the rank's (args, kwargs): each rank may change its own."""
    if meta["per_rank"]:
        return _load(os.path.join("args", "%d.pkl" % rank))
    if not _SHARED_ARGS:
        with open(os.path.join(HERE, "args", "all.pkl"), "rb") as stream:
            _SHARED_ARGS.append(stream.read())
    return _unpickled(_SHARED_ARGS[0])


def _load_task():
    """The pickled function and job description; raises when this Python cannot use them."""
    meta = _load("meta.pkl")
    if tuple(sys.version_info[:2]) != tuple(meta["python"]):
        raise RuntimeError("the worker's python3 is %d.%d but the function was pickled by Python %d.%d; "
                           "start the worker with --interpreter python=/path/to/python%d.%d"
                           % (sys.version_info[:2] + tuple(meta["python"]) * 2))
    try:
        import cloudpickle  # noqa: F401  (unpickling by-value functions needs it)
    except ImportError as exc:
        raise RuntimeError("cloudpickle is not installed on worker for %s (Debian: apt install "
                           "python3-cloudpickle)" % sys.executable) from exc
    return meta, _load("function.pkl")


def _seed_generators(stream):
    """Seeds `random` and numpy's global generator for one stream of the job's PESC_SEED.

    numpy's: SeedSequence(seed, spawn_key=(stream,)), the stream that
    SeedSequence(seed).spawn(n)[stream] gives; `random`'s from the seed and
    the stream alone, so it is the same whether or not a worker has numpy.
    """
    seed = os.environ.get("PESC_SEED")
    if seed is None:
        return
    import random
    random.seed("pesc:%s:%d" % (seed, stream), version=2)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(numpy.random.SeedSequence(int(seed), spawn_key=(stream,)).generate_state(8))


def _run_rank(rank, task):
    """Runs one rank: (0 when it succeeded, its pickled record). `task` is ("task", meta, function) or the error record of loading it."""
    if task[0] == "error":
        # Reported as recorded once: raising the same exception again for
        # every rank would grow its traceback by a frame each time.
        sys.stderr.write(task[2])
        return 1, _pickled(task)
    try:
        meta, function = task[1:]
        args, kwargs = _args_for(rank, meta)
        _seed_generators(meta.get("first_stream", 0) + rank)
        value = function(*args, **kwargs) if meta["per_rank"] else function(rank, *args, **kwargs)
        try:
            return 0, _pickled(("ok", value))
        except Exception as exc:
            raise TypeError(f"the return value of rank {rank} cannot be pickled: {exc}") from exc
    except BaseException as exc:  # report SystemExit and KeyboardInterrupt too
        traceback.print_exc()
        return 1, _pickled(_error_record(exc))


def _task_or_error():
    """("task", meta, function), or the error record of why they cannot be loaded."""
    try:
        return ("task", *_load_task())
    except BaseException as exc:
        return _error_record(exc)


def _with_output_to(path, work):
    """Runs work() with fd 1 and 2 (and so print, C extensions, children) appending to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        return work()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


def _serve(descriptors):
    commands_fd, answers_fd = (int(fd) for fd in descriptors.split(","))
    task = _task_or_error()
    with os.fdopen(commands_fd, "r", encoding="utf-8", newline="\n") as commands, \
            os.fdopen(answers_fd, "wb") as answers:
        for line in commands:
            kind, rank, output_dir, checkpoint_dir = line.rstrip("\n").split("\t")
            if kind != "rank":
                continue
            for name in ("PESC_RANK", "RANK", "SLURM_ARRAY_TASK_ID", "PBS_ARRAYID"):
                os.environ[name] = rank
            os.environ["PESC_OUTPUT_DIR"] = output_dir
            os.environ["PESC_CHECKPOINT_DIR"] = checkpoint_dir
            status, record = _with_output_to(os.path.join(output_dir, "output.txt"),
                                             lambda: _run_rank(int(rank), task))
            if len(record) <= PIPED_MAX:
                answers.write(b"done\t%d\t%s\t%d\n" % (status, RESULT.encode(), len(record)) + record)
            else:
                _write(output_dir, record)
                answers.write(b"done\t%d\n" % status)
            answers.flush()


def main():
    descriptors = os.environ.get("PESC_RUNNER_FDS")
    if descriptors:
        _serve(descriptors)
        return
    rank = int(os.environ.get("PESC_RANK", "0"))
    output_dir = os.environ.get("PESC_OUTPUT_DIR") or os.path.join(os.getcwd(), "output")
    os.makedirs(output_dir, exist_ok=True)
    status, record = _run_rank(rank, _task_or_error())
    _write(output_dir, record)
    sys.exit(status)


if __name__ == "__main__":
    main()
