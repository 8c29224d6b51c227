"""Function-mode rank runner, copied into each job's process directory as runner.py.

Runs on a worker as ``python3 runner.py <PESC flags>``: loads the pickled
function and this rank's arguments from the directory beside it, calls it,
and pickles ``("ok", value)`` or ``("error", summary, traceback_text)`` into
``$PESC_OUTPUT_DIR/result.pkl``. Needs only python3 and cloudpickle.
"""
import os
import pickle
import sys
import traceback

RESULT = "result.pkl"


def _write(output_dir, record):
    path = os.path.join(output_dir, RESULT)
    with open(path + ".tmp", "wb") as stream:
        pickle.dump(record, stream, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(path + ".tmp", path)


def _error_record(exc):
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ("error", f"{type(exc).__name__}: {exc}", text)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rank = int(os.environ.get("PESC_RANK", "0"))
    output_dir = os.environ.get("PESC_OUTPUT_DIR") or os.path.join(os.getcwd(), "output")
    os.makedirs(output_dir, exist_ok=True)
    try:
        with open(os.path.join(here, "meta.pkl"), "rb") as stream:
            meta = pickle.load(stream)
        if tuple(sys.version_info[:2]) != tuple(meta["python"]):
            raise RuntimeError("the worker's python3 is %d.%d but the function was pickled by Python %d.%d; "
                               "start the worker with --interpreter python=/path/to/python%d.%d"
                               % (sys.version_info[:2] + tuple(meta["python"]) * 2))
        try:
            import cloudpickle  # noqa: F401  (unpickling by-value functions needs it)
        except ImportError as exc:
            raise RuntimeError("cloudpickle is not installed on worker for %s (Debian: apt install "
                               "python3-cloudpickle)" % sys.executable) from exc
        with open(os.path.join(here, "function.pkl"), "rb") as stream:
            function = pickle.load(stream)
        with open(os.path.join(here, "args", "%d.pkl" % rank if meta["per_rank"] else "all.pkl"), "rb") as stream:
            args = pickle.load(stream)
        value = function(*args) if meta["per_rank"] else function(rank, *args)
        record = ("ok", value)
        try:
            _write(output_dir, record)
        except Exception as exc:
            raise TypeError(f"the return value of rank {rank} cannot be pickled: {exc}") from exc
    except BaseException as exc:  # report SystemExit and KeyboardInterrupt too
        _write(output_dir, _error_record(exc))
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
