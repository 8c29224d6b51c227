"""Function mode: a Python callable packed as a process directory that python3 runs per rank.

Cold version: each rank starts its own interpreter, which runs runner.py (the
package's ``_runner.py``) beside the pickled function and its arguments.
"""

from __future__ import annotations

import os
import pickle
import shlex
import shutil
import sys
import tempfile
from typing import Any, Callable, Sequence

from .errors import RankFailed, SubmitError

ENTRY = "runner.py"
RESULT = "result.pkl"


def _dumps(value: Any, what: str) -> bytes:
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - Debian: python3-cloudpickle
        raise SubmitError("function mode needs cloudpickle (Debian: apt install python3-cloudpickle)") from exc
    try:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise SubmitError(f"cannot pickle {what}: {type(exc).__name__}: {exc}", "INVALID_ARGUMENT") from exc


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def pack(function: Callable[..., Any], args: Sequence[Any] = (), items: Sequence[Any] | None = None) -> str:
    """Writes the process directory for ``function`` and returns its path (the caller removes it).

    Without ``items`` every rank calls ``function(rank, *args)``; with them,
    rank ``r`` calls ``function(items[r])``. Anything that cannot be pickled
    raises SubmitError naming it, before any rank runs.
    """
    function_bytes = _dumps(function, f"the function {_name(function)!r}")
    per_rank = items is not None
    if per_rank:
        arg_files = {f"{i}.pkl": _dumps((item,), f"item {i} ({type(item).__name__})") for i, item in enumerate(items)}
    else:
        for i, arg in enumerate(args):
            _dumps(arg, f"parameter {i} ({type(arg).__name__}) of {_name(function)!r}")
        arg_files = {"all.pkl": _dumps(tuple(args), "the parameters")}
    directory = tempfile.mkdtemp(prefix="pesc-function-")
    try:
        os.mkdir(os.path.join(directory, "args"))
        for name, data in arg_files.items():
            with open(os.path.join(directory, "args", name), "wb") as stream:
                stream.write(data)
        with open(os.path.join(directory, "function.pkl"), "wb") as stream:
            stream.write(function_bytes)
        with open(os.path.join(directory, "meta.pkl"), "wb") as stream:
            pickle.dump({"python": tuple(sys.version_info[:2]), "per_rank": per_rank}, stream, protocol=2)
        shutil.copyfile(os.path.join(os.path.dirname(__file__), "_runner.py"), os.path.join(directory, ENTRY))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


def domain(embedded: bool) -> str:
    """The domain function-mode ranks run in.

    On the embedded farm, ranks run with this very interpreter, which has
    cloudpickle and the same Python version. On a coordinator's workers it is
    their ``python`` domain (a worker's ``--interpreter python=...`` picks one).
    """
    if embedded:
        return f"{shlex.quote(sys.executable)} {{entry}}"
    return "python"


def value(results: Any, rank: int) -> Any:
    """The return value of ``rank``, or RankFailed with the remote traceback."""
    try:
        record = pickle.loads(results.read_file(rank, RESULT))
    except Exception as exc:
        result = results[rank]
        why = result.error or (f"killed by signal {result.signal}" if result.signal else
                               f"exited with code {result.exit_code} without a result ({type(exc).__name__}: {exc})")
        raise RankFailed(rank, why, output=result.output, exit_code=result.exit_code) from None
    if record[0] == "ok":
        return record[1]
    _, summary, remote_traceback = record
    result = results[rank]
    raise RankFailed(rank, summary, remote_traceback, result.output, result.exit_code)
