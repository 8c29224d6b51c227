"""Function mode: a Python callable packed as a process directory that python3 runs per rank.

Cold version: each rank starts its own interpreter, which runs runner.py (the
package's ``_runner.py``) beside the pickled function and its arguments.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shlex
import shutil
import sys
import sysconfig
import tempfile
from typing import Any, Callable, Iterator, Mapping, Sequence

from .errors import RankFailed, SubmitError

ENTRY = "runner.py"
RESULT = "result.pkl"

# A rank's call: positional and keyword arguments.
Call = tuple[tuple[Any, ...], dict[str, Any]]


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - Debian: python3-cloudpickle
        raise SubmitError("function mode needs cloudpickle (Debian: apt install python3-cloudpickle)") from exc
    return cloudpickle


def _dumps(value: Any, what: str) -> bytes:
    try:
        return _cloudpickle().dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise SubmitError(f"cannot pickle {what}: {type(exc).__name__}: {exc}", "INVALID_ARGUMENT") from exc


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def _installed_roots() -> tuple[str, ...]:
    """Where the standard library and installed packages live; a module elsewhere is the user's own."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages")))
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # pesc itself
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)


def user_modules() -> list[Any]:
    """Loaded top-level modules that come from the user's own files (``mymod.py`` beside the script).

    Workers do not have them installed, so they travel by value with the function.
    """
    roots = _installed_roots()
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if "." in name or name == "__main__" or not path or not path.endswith(".py"):
            continue
        if not os.path.realpath(path).startswith(roots):
            found.append(module)
    return found


@contextlib.contextmanager
def _user_modules_by_value() -> Iterator[None]:
    cloudpickle = _cloudpickle()
    registered = []
    for module in user_modules():
        try:
            cloudpickle.register_pickle_by_value(module)
            registered.append(module)
        except (ValueError, AttributeError):  # already registered, or an older cloudpickle
            continue
    try:
        yield
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def calls_of(items: Sequence[Sequence[Any]]) -> list[Call]:
    """One call per rank from per-rank positional argument tuples (``pesc.map`` over several iterables)."""
    return [(tuple(args), {}) for args in items]


def pack(function: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
         per_rank: Sequence[Call] | None = None, first_stream: int = 0) -> str:
    """Writes the process directory for ``function`` and returns its path (the caller removes it).

    Without ``per_rank`` every rank calls ``function(rank, *args, **kwargs)``;
    with it, rank ``r`` calls ``function(*per_rank[r][0], **per_rank[r][1])``.
    Anything that cannot be pickled raises SubmitError naming it, before any
    rank runs. The user's own modules travel by value, so a function from
    ``mymod.py`` runs on workers that have no such file. With a job seed,
    rank ``r`` draws from random stream ``first_stream + r``.
    """
    with _user_modules_by_value():
        function_bytes = _dumps(function, f"the function {_name(function)!r}")
        if per_rank is not None:
            arg_files = {f"{i}.pkl": _dumps(call, f"item {i} ({_described(call)})") for i, call in enumerate(per_rank)}
        else:
            for i, arg in enumerate(args):
                _dumps(arg, f"parameter {i} ({type(arg).__name__}) of {_name(function)!r}")
            for key, arg in (kwargs or {}).items():
                _dumps(arg, f"parameter {key!r} ({type(arg).__name__}) of {_name(function)!r}")
            arg_files = {"all.pkl": _dumps((tuple(args), dict(kwargs or {})), "the parameters")}
    directory = tempfile.mkdtemp(prefix="pesc-function-")
    try:
        os.mkdir(os.path.join(directory, "args"))
        for name, data in arg_files.items():
            with open(os.path.join(directory, "args", name), "wb") as stream:
                stream.write(data)
        with open(os.path.join(directory, "function.pkl"), "wb") as stream:
            stream.write(function_bytes)
        with open(os.path.join(directory, "meta.pkl"), "wb") as stream:
            meta = {"python": tuple(sys.version_info[:2]), "per_rank": per_rank is not None, "first_stream": first_stream}
            pickle.dump(meta, stream, protocol=2)
        shutil.copyfile(os.path.join(os.path.dirname(__file__), "_runner.py"), os.path.join(directory, ENTRY))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


def _described(call: Call) -> str:
    return ", ".join(type(arg).__name__ for arg in (*call[0], *call[1].values())) or "no arguments"


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
    outcome = outcome_of(results, rank)
    if isinstance(outcome, Raised):
        raise outcome.failure
    return outcome


class Raised:
    """A rank that raised: ``failure`` is RankFailed (with the remote traceback); ``original`` the exception itself
    when it could be pickled back."""

    def __init__(self, failure: RankFailed, original: BaseException | None = None) -> None:
        self.failure = failure
        self.original = original


def outcome_of(results: Any, rank: int) -> Any:
    """The return value of ``rank``, or a Raised saying why there is none."""
    try:
        record = pickle.loads(results.read_file(rank, RESULT))
    except Exception as exc:
        result = results[rank]
        why = result.error or (f"killed by signal {result.signal}" if result.signal else
                               f"exited with code {result.exit_code} without a result ({type(exc).__name__}: {exc})")
        return Raised(RankFailed(rank, why, output=result.output, exit_code=result.exit_code))
    if record[0] == "ok":
        return record[1]
    summary, remote_traceback = record[1], record[2]
    result = results[rank]
    failure = RankFailed(rank, summary, remote_traceback, result.output, result.exit_code)
    return Raised(failure, _original(record))


def _original(record: tuple[Any, ...]) -> BaseException | None:
    if len(record) < 4 or record[3] is None:
        return None
    try:
        return pickle.loads(record[3])
    except Exception:
        return None
