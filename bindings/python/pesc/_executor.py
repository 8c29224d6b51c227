"""pesc.Executor: the concurrent.futures interface on the farm.

Calls submitted close together travel as one job (one rank per call), so a
loop of ``submit`` or an ``Executor.map`` over thousands of items costs one
submission, not thousands. The futures of one job complete when its ranks
have, and raise the call's own exception, with the remote traceback as its
``__cause__`` (a RankFailed), as ``ProcessPoolExecutor`` does.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Callable, Optional

from . import _function
from .errors import RankFailed, SubmitError

# How long the executor waits for more calls after the last one before it
# sends what it has: long enough for a loop of submits, short against a rank.
_GATHER_SECONDS = 0.005
# The longest it keeps calls back while a loop keeps submitting.
_GATHER_LIMIT_SECONDS = 0.1


# Each rank applies its own call. A lambda, so that cloudpickle ships it by
# value: workers need no pesc package to run it.
_apply = lambda function, args, kwargs: function(*args, **kwargs)  # noqa: E731


class _Call:
    """A submitted call; ``index`` counts the executor's calls and is its random stream under a ``seed``."""

    __slots__ = ("future", "function", "args", "kwargs", "index")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 index: int) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.function, self.args, self.kwargs, self.index = function, args, kwargs, index


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` whose calls run as ranks on a farm.

    ``coordinator`` and ``slots`` choose the farm as for :func:`pesc.run`
    (default: an embedded farm in this process); ``lab`` takes the options
    of :meth:`pesc.Farm.map` (max_attempts, timeout, rooms, memory ...) and
    applies them to every call; with ``seed``, the n-th call submitted
    draws from random stream n, however calls are grouped into jobs.
    Futures work with ``as_completed`` and
    ``wait``; ``shutdown(cancel_futures=True)`` cancels calls not yet sent
    and the jobs still running.
    """

    def __init__(self, coordinator: Optional[str] = None, *, slots: int = 0, **lab: Any) -> None:
        from . import Farm, _lab_options

        _lab_options(**lab)  # an unknown option fails here, not at the first submit
        self._farm = Farm(coordinator=coordinator, slots=slots)
        self._lab = lab
        self._condition = threading.Condition()
        self._waiting: list[_Call] = []
        self._jobs: dict[str, Any] = {}
        self._watchers: list[threading.Thread] = []
        self._shutdown = False
        self._submitted = 0
        self._sender = threading.Thread(target=self._send_loop, name="pesc-executor", daemon=True)
        self._sender.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if not callable(fn):
            raise TypeError(f"submit needs a callable, not {type(fn).__name__}")
        with self._condition:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            call = _Call(fn, args, kwargs, self._submitted)
            self._submitted += 1
            self._waiting.append(call)
            self._condition.notify_all()
        return call.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._condition:
            self._shutdown = True
            if cancel_futures:
                for call in self._waiting:
                    call.future.cancel()
                self._waiting.clear()
                for job in self._jobs.values():
                    job.cancel()
            self._condition.notify_all()
        if wait:
            self._sender.join()
            for watcher in list(self._watchers):
                watcher.join()

    def _send_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            calls = [call for call in batch if call.future.set_running_or_notify_cancel()]
            for run in _consecutive(calls):
                self._send(run)

    def _next_batch(self) -> Optional[list[_Call]]:
        """The calls that arrived together; None once shut down with nothing left."""
        with self._condition:
            self._condition.wait_for(lambda: self._waiting or self._shutdown)
            if not self._waiting:
                return None
            limit = time.monotonic() + _GATHER_LIMIT_SECONDS
            while not self._shutdown and time.monotonic() < limit:
                seen = len(self._waiting)
                self._condition.wait(_GATHER_SECONDS)
                if len(self._waiting) == seen:
                    break
            batch, self._waiting = self._waiting, []
            return batch

    def _send(self, calls: list[_Call]) -> None:
        try:
            job = self._farm.map_calls(_apply, [((c.function, c.args, c.kwargs), {}) for c in calls],
                                       name=_label(calls), first_stream=calls[0].index, **self._lab)
        except SubmitError as error:
            if len(calls) > 1:  # one call that cannot be pickled must not fail the others
                for call in calls:
                    self._send([call])
                return
            calls[0].future.set_exception(error)
            return
        except BaseException as error:  # noqa: BLE001 - the futures must learn why
            for call in calls:
                call.future.set_exception(error)
            return
        watcher = threading.Thread(target=self._watch, args=(job, calls), name=f"pesc-executor-{job.id}",
                                   daemon=True)
        with self._condition:
            self._jobs[job.id] = job
            self._watchers.append(watcher)
        watcher.start()

    def _watch(self, job: Any, calls: list[_Call]) -> None:
        try:
            results = job.wait(progress=False)
            for rank, call in enumerate(calls):
                _settle(call.future, _function.outcome_of(results._core, rank))
        except BaseException as error:  # noqa: BLE001 - the farm failed: every open future says so
            for call in calls:
                if not call.future.done():
                    call.future.set_exception(error)
        finally:
            with self._condition:
                self._jobs.pop(job.id, None)
                self._watchers.remove(threading.current_thread())

    def __repr__(self) -> str:
        return f"<pesc.Executor farm={self._farm!r}>"


def _settle(future: concurrent.futures.Future[Any], outcome: Any) -> None:
    if not isinstance(outcome, _function.Raised):
        future.set_result(outcome)
        return
    failure: RankFailed = outcome.failure
    if outcome.original is None:
        future.set_exception(failure)
        return
    original = outcome.original
    original.__cause__ = failure  # the remote traceback, as ProcessPoolExecutor shows it
    future.set_exception(original)


def _consecutive(calls: list[_Call]) -> list[list[_Call]]:
    """Runs of calls with consecutive indices: a job's ranks draw from consecutive random streams."""
    runs: list[list[_Call]] = []
    for call in calls:
        if runs and runs[-1][-1].index + 1 == call.index:
            runs[-1].append(call)
        else:
            runs.append([call])
    return runs


def _label(calls: list[_Call]) -> str:
    names = {getattr(call.function, "__qualname__", "function") for call in calls}
    return f"executor: {names.pop()}" if len(names) == 1 else f"executor: {len(names)} functions"
