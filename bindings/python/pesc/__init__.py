"""pesc: run a sequential program (or a Python function) many times on a farm, results back in rank order.

Script mode runs a file as PESC does, each rank with the PESC flags
(``--rank``, ``--world_size``, ``--output_dir``, ``--parameters`` ...)::

    import pesc
    res = pesc.run("sim.py", repetitions=100, params=[3, 0.5])
    print(res.output)          # every rank's output.txt, in rank order
    res[7].exit_code, res.failed, res.to_pandas(), res.save("out/")

Function mode calls ``fn(rank, *params)`` on the farm and returns the values::

    means = pesc.run(trial, repetitions=1000, params=[10_000]).values
    squares = pesc.map(lambda x: x * x, range(10))

Without ``coordinator`` (or ``$PESC_COORDINATOR``) jobs run on an embedded
farm inside this process; with it, on a pesc-coordinator and its workers.
Ctrl-C while waiting cancels the job on the farm and raises KeyboardInterrupt.
"""

from __future__ import annotations

import atexit
import codecs
import os
import weakref
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union, overload

from . import _core, _function, _joblib
from ._core import VERSION, JobReport, Progress, RankResult
from ._progress import Bar
from .errors import FarmUnavailable, JobCancelled, JobFailed, NotFound, PescError, RankFailed, SubmitError

__all__ = [
    "run", "map", "logs", "Farm", "Job", "Results", "RankResult", "Progress", "JobReport", "Executor",
    "PescError", "SubmitError", "FarmUnavailable", "JobCancelled", "JobFailed", "NotFound", "RankFailed",
]
__version__ = VERSION  # PESC_VERSION of the library it was built with

Process = Union[str, "os.PathLike[str]", Callable[..., Any]]


class Results(Sequence[RankResult]):
    """Every rank's result of a finished job, indexed by rank.

    ``results[r]`` is a :class:`RankResult` (``output``, ``exit_code``,
    ``duration`` in seconds, ``worker``, ``start``, ``end`` ...).
    """

    def __init__(self, core: _core.Results, function_mode: bool = False) -> None:
        self._core = core
        self._function_mode = function_mode
        self._values: Optional[list[Any]] = None

    @property
    def job_id(self) -> str:
        """The farm's id of the job."""
        return self._core.job_id

    @property
    def output(self) -> str:
        """Everything every rank printed (its output.txt), joined in rank order."""
        return self._core.output()

    @property
    def ok(self) -> bool:
        """True when every rank succeeded."""
        return self._core.ok

    @property
    def failed(self) -> list[RankResult]:
        """The ranks that did not succeed, with their output."""
        return [self._core[r] for r in self._core.failed_ranks()]

    @property
    def values(self) -> list[Any]:
        """Function mode: the return values, index = rank (``pesc.map``: index = item).

        Raises RankFailed, naming the rank and carrying its remote traceback,
        for the first rank that raised or died.
        """
        if not self._function_mode:
            raise TypeError("values exist for function-mode jobs only; a script's results are in .output and "
                            "read_file()")
        if self._values is None:
            self._values = [_function.value(self._core, rank) for rank in range(len(self))]
        return self._values

    def __len__(self) -> int:
        return len(self._core)

    @overload
    def __getitem__(self, rank: int) -> RankResult: ...
    @overload
    def __getitem__(self, rank: slice) -> list[RankResult]: ...

    def __getitem__(self, rank: Union[int, slice]) -> Union[RankResult, list[RankResult]]:
        if isinstance(rank, slice):
            return [self._core[r] for r in range(*rank.indices(len(self)))]
        if rank < 0:
            rank += len(self)
        if not 0 <= rank < len(self):
            raise IndexError(f"rank {rank} out of range (the job has {len(self)} ranks)")
        return self._core[rank]

    def __iter__(self) -> Iterator[RankResult]:
        return (self._core[r] for r in range(len(self)))

    def read_file(self, rank: int, relative: Union[str, "os.PathLike[str]"]) -> bytes:
        """The bytes of a file rank ``rank`` left in its output_dir; NotFound when it left none."""
        return self._core.read_file(rank, os.fspath(relative))

    def save(self, directory: Union[str, "os.PathLike[str]"]) -> None:
        """Writes ``directory/rank_<r>/`` (every file each rank left) and ``directory/output.txt``."""
        self._core.save(os.fspath(directory))

    def retry_failed(self, ranks: Optional[Iterable[int]] = None, *, progress: bool = True) -> Results:
        """Runs the ranks that did not succeed again, in the same job, and returns the updated Results.

        Every rank stays once, in rank order: the retried ranks' new results
        replace their failed ones (``output`` joins them in order). ``ranks``
        names the ranks to run instead (a rank that succeeded runs again
        too). Raises JobFailed (FAILED_PRECONDITION) when no rank is left to
        retry, PescError (OUT_OF_RANGE) for a rank the job does not have.
        """
        job = Job(self._core.retry(list(ranks or [])), self._function_mode)
        job._returned = job.progress().finished  # the ranks kept, for the progress bar
        return job.wait(progress=progress)

    def report(self) -> JobReport:
        """What the farm gained and where the rest of the time went (``print(res.report())``).

        Wall time, sum of rank times, speedup (their ratio) and efficiency on
        the slots used, the slot-time lost before, between and after ranks,
        and per worker: ranks, mean and max rank time, retries and lost
        attempts. Durations are in seconds. ``.timeline_svg()`` draws the
        timeline without matplotlib; :meth:`plot` draws it with it.
        """
        return self._core.report()

    def plot(self, ax: Optional[Any] = None) -> Any:
        """The job's timeline with matplotlib: one row per worker slot, a bar per rank; returns the Axes.

        ``ax`` draws into existing axes; without it a new figure is made
        (``res.plot().figure.savefig("timeline.png")``).
        """
        from ._plot import timeline

        return timeline(self.report(), ax)

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per rank (rank, status, exit_code, worker, start, end, duration ...)."""
        import pandas

        columns = ("rank", "status", "exit_code", "signal", "worker", "start", "end", "duration", "cpu_time",
                   "max_rss_kb", "attempt", "error", "failure_class", "limit_exceeded", "left_out", "output")
        return pandas.DataFrame([{c: getattr(r, c) for c in columns} for r in self], columns=list(columns))

    def _repr_html_(self) -> str:
        """What a notebook shows for a Results: counts, wall time, the first ranks and failure classes."""
        from ._html import results_html

        return results_html(self)

    def __repr__(self) -> str:
        return f"<pesc.Results job={self.job_id} ranks={len(self)} failed={len(self._core.failed_ranks())}>"


class Job:
    """A submitted job; :meth:`Farm.map` returns it at once, without waiting.

    The job belongs to the farm: dropping this object neither waits for nor
    cancels it (:meth:`cancel` does).
    """

    def __init__(self, core: _core.Job, function_mode: bool = False) -> None:
        self._core = core
        self._function_mode = function_mode
        self._returned = 0
        self._results: Optional[Results] = None

    @property
    def id(self) -> str:
        """The farm's id of the job (``pesc status ID`` shows it too)."""
        return self._core.id

    @property
    def repetitions(self) -> int:
        return self._core.repetitions

    def _next(self, timeout: Optional[float]) -> Optional[RankResult]:
        result = self._core.next(-1.0 if timeout is None else max(0.0, timeout))
        if result is not None:
            self._returned += 1
        return result

    def as_completed(self, timeout: Optional[float] = None) -> Iterator[RankResult]:
        """Yields each rank's result as it finishes (completion order).

        ``timeout`` (seconds) bounds the wait for each rank; TimeoutError
        when it passes. Ctrl-C cancels the job and raises KeyboardInterrupt.
        """
        while True:
            result = self._next(timeout)
            if result is not None:
                yield result
            elif self._core.done():
                return
            else:
                raise TimeoutError(f"no rank of job {self.id} finished within {timeout} s")

    def __iter__(self) -> Iterator[RankResult]:
        """Yields results in rank order, each as soon as it and every lower rank have finished."""
        finished: dict[int, RankResult] = {}
        following = 0
        for result in self.as_completed():
            finished[result.rank] = result
            while following in finished:
                yield finished.pop(following)
                following += 1
        yield from self.results()[following:]

    def wait(self, timeout: Optional[float] = None, progress: bool = True) -> Results:
        """Blocks until every rank finished and returns the Results, in rank order.

        Shows a progress bar unless ``progress=False``. ``timeout`` (seconds)
        raises TimeoutError, leaving the job running. Ctrl-C cancels the job on
        the farm and raises KeyboardInterrupt.
        """
        if self._results is not None:
            return self._results
        bar = Bar(self.repetitions, progress, done=self._returned)
        deadline = None if timeout is None else _now() + timeout
        said_waiting = ""  # a job whose ranks have nowhere to run looks hung: say why, once
        try:
            while not self._core.done():
                remaining = None if deadline is None else deadline - _now()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"job {self.id} did not finish within {timeout} s")
                if self._next(_WAITING_CHECK if remaining is None else min(remaining, _WAITING_CHECK)) is not None:
                    bar.update()
                elif progress and (waiting := self._core.progress().waiting) != said_waiting:
                    said_waiting = waiting
                    if waiting:
                        bar.note(f"pesc: the ranks wait: {waiting}")
        finally:
            bar.close()
        self._results = Results(self._core.results(), self._function_mode)
        return self._results

    def results(self) -> Results:
        """The Results, waiting quietly (no progress bar) if the job still runs."""
        return self.wait(progress=False)

    def progress(self) -> Progress:
        """Counts of pending, running, succeeded, failed and cancelled ranks."""
        return self._core.progress()

    def done(self) -> bool:
        """True once every rank has been returned by this Job."""
        return self._core.done()

    def cancel(self) -> None:
        """Stops every running rank of the job and dispatches no more."""
        self._core.cancel()

    def retry(self, ranks: Optional[Iterable[int]] = None) -> list[int]:
        """Runs the ended job's failed ranks (or ``ranks``) again; :meth:`wait` then gives every rank anew.

        Returns the ranks that run again. See :meth:`Results.retry_failed`.
        """
        retried = self._core.retry(list(ranks or []))
        self._results = None
        self._returned = self.repetitions - len(retried)
        return retried

    def logs(self, rank: int, follow: bool = True) -> Iterator[str]:
        """Rank ``rank``'s output.txt as text chunks, as the rank prints it, until it ends.

        ``follow=False`` gives what it printed so far, once. A new attempt of
        the rank (a retry after a failure) starts its output over.
        """
        return _text_of(self._core.log(rank, follow))

    def __repr__(self) -> str:
        return f"<pesc.Job {self.id} ranks={self.repetitions}>"


def _now() -> float:
    return time.monotonic()


# Seconds between looks at whether a waiting job's ranks have anywhere to run.
_WAITING_CHECK = 1.0


def _embedded(coordinator: Optional[str]) -> bool:
    return not (coordinator or os.environ.get("PESC_COORDINATOR"))


PoolOptions = Union[str, Mapping[str, Any]]


def _pool_texts(pool: PoolOptions) -> dict[str, list[str]]:
    """The pool's options as the core reads them: each value a list of texts."""
    if isinstance(pool, str):
        return {"batch_system": [pool]}
    if not isinstance(pool, Mapping):
        raise TypeError(f"pool is a batch system's name or a dict of pool options, not {type(pool).__name__}")
    texts = {}
    for name, value in pool.items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, int, float)) else list(value)
        texts[name] = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return texts


# Farms with a pool still open, closed when the interpreter exits.
_open_sessions: "weakref.WeakSet[Farm]" = weakref.WeakSet()


@atexit.register
def _close_sessions() -> None:
    for farm in list(_open_sessions):
        farm.close()


class Farm:
    """A connection to a farm: the embedded one in this process, a pesc-coordinator, or a batch system's nodes.

    ``domain`` is how ranks are started (python, R, shell, java, native, or a
    command template with ``{entry}``); None infers it from each process's
    file name as the ``pesc`` command does. ``slots`` and ``state_dir`` apply
    to the embedded farm only.

    ``pool`` makes the farm a session on a cluster (a notebook on a login
    node): a coordinator in this process, listening with a token and TLS,
    submits pesc-worker pilots to the batch system while the session's ranks
    wait, and cancels them when the farm is closed (``close()``, the end of
    a ``with`` block, or the interpreter's exit). ``pool`` is a batch
    system's name (``"slurm"``) or a dict of: ``batch_system``,
    ``partition``, ``time_limit`` and ``idle_timeout`` (``"10m"``, ``"1h"``
    or seconds), ``max_workers``, ``slots_per_worker``, ``submit_args`` and
    ``worker_args`` (lists), ``worker`` (the pesc-worker pilots run; default
    ``$PESC_WORKER_BIN``), ``listen`` (``"host:port"`` the nodes reach this
    process at) and ``local_slots`` (ranks this process runs too; default
    0). ``state_dir`` is then where the session's directory goes (default
    ``~/.cache/pesc/sessions``): on a filesystem the nodes see.
    """

    def __init__(self, domain: Optional[str] = None, coordinator: Optional[str] = None, *, slots: int = 0,
                 state_dir: Optional[Union[str, "os.PathLike[str]"]] = None, user: Optional[str] = None,
                 pool: Optional[PoolOptions] = None) -> None:
        self.domain = domain
        self.coordinator = coordinator
        self.pool = pool
        self._options: dict[str, Any] = {"coordinator": coordinator or "", "state_dir": os.fspath(state_dir or ""),
                                         "slots": slots, "user": user or ""}
        # One core farm per domain (the C++ Farm fixes its domain); with a
        # pool they share the first one's session.
        self._farms: dict[str, _core.Farm] = {}
        if pool is not None:
            self._options["pool"] = _pool_texts(pool)
            self._farm(domain or "native")  # starts the session now: its mistakes show here
            _open_sessions.add(self)

    def _farm(self, domain: str) -> _core.Farm:
        if domain not in self._farms:
            if self.pool is not None and self._farms:
                self._farms[domain] = next(iter(self._farms.values())).with_domain(domain)
            else:
                self._farms[domain] = _core.Farm(domain, **self._options)
        return self._farms[domain]

    def describe(self) -> str:
        """``"embedded (N slots)"``, the coordinator's address, or the pool's session."""
        return self._farm(self.domain or "native").describe()

    def close(self) -> None:
        """Ends a pool's session: cancels its pilots and stops its coordinator. Nothing for other farms."""
        if self.pool is not None and self._farms:
            next(iter(self._farms.values())).close()
        _open_sessions.discard(self)

    def __enter__(self) -> "Farm":
        return self

    def __exit__(self, *exception: Any) -> None:
        self.close()

    def map(self, process: Process, repetitions: int, params: Union[Iterable[Any], Mapping[str, Any]] = (), *, entry: Optional[str] = None,
            name: Optional[str] = None, max_attempts: int = 1, timeout: Optional[float] = None,
            checkpoint_interval: Optional[float] = None, rooms: Iterable[str] = (), same_machine: bool = False,
            shared: Iterable[Union[str, os.PathLike]] = (), memory: Union[int, str, None] = None,
            cpu_time: Optional[float] = None, open_files: int = 0, processes: int = 0,
            output_size: Union[int, str, None] = None, network: bool = False, parallel: bool = False,
            no_duplicates: bool = False, gpus: int = 0, min_capability: Optional[float] = None,
            seed: Optional[int] = None, notify: Union[str, Iterable[str]] = ()) -> Job:
        """Submits ``process`` to run as ranks 0..repetitions-1 and returns the Job without waiting.

        ``process`` is a script or binary, a directory or a tar/zip archive
        (``entry`` names the file to run inside), or a Python callable that
        each rank calls as ``process(rank, *params)``, or
        ``process(rank, **params)`` when ``params`` is a dict. Script
        parameters are passed as ``str(p)``; a function's are pickled as they
        are, and functions from your own modules travel with them.
        For a lab: ``max_attempts`` retries a rank that fails; ``timeout``
        (seconds) kills a rank that runs longer; ``checkpoint_interval``
        (seconds) saves a running rank's checkpoint_dir so a moved rank
        resumes; ``rooms`` and ``same_machine`` say where ranks may run;
        ``shared`` files or URLs appear read-only in every rank's app_dir.
        Per rank limits: ``memory`` and ``output_size`` (bytes or "512M"),
        ``cpu_time`` (seconds per process), ``open_files``, ``processes``; a
        rank over its memory, CPU time or output size is killed and its
        RankResult.limit_exceeded says which. ``network=True`` lets ranks use
        the network on workers that sandbox them.
        ``parallel=True`` makes a gang: every rank runs at once, started
        together, each knowing rank 0's address and a free port
        (``MASTER_ADDR``, ``MASTER_PORT``, also ``--master_addr``/``--master_port``)
        so torch.distributed ``env://`` or sockets can meet; a lost rank
        restarts the gang. ``no_duplicates=True`` never starts a straggling
        rank a second time on an idle worker (for ranks with side effects).
        ``gpus`` per rank, of at least ``min_capability``: ranks run where
        such GPUs are free and see them as ``CUDA_VISIBLE_DEVICES``.
        ``seed`` (an int from 0 to 2**64-1) makes random numbers
        reproducible: rank ``r`` of a function gets ``random`` and
        ``numpy.random`` seeded with its own stream,
        ``SeedSequence(seed).spawn(n)[r]``, whatever the workers, slots,
        chunks or retries; scripts get it as ``PESC_SEED`` (see the README).
        ``notify`` (a target or a list of them) is told once when the job
        ends, with its outcome, wall time and speedup: ``"mailto:ADDR"``
        (the coordinator needs ``--smtp-url``) or an ``http(s)://`` URL that
        gets a JSON POST.
        Raises SubmitError when the farm refuses the job or something cannot
        be pickled.
        """
        _check_repetitions(repetitions)
        lab = _lab_options(max_attempts=max_attempts, timeout=timeout, checkpoint_interval=checkpoint_interval,
                           rooms=rooms, same_machine=same_machine, shared=shared, memory=memory, cpu_time=cpu_time,
                           open_files=open_files, processes=processes, output_size=output_size, network=network,
                           parallel=parallel, no_duplicates=no_duplicates, gpus=gpus, min_capability=min_capability,
                           seed=seed, notify=notify)
        args, kwargs = _split_params(params)
        if callable(process):
            directory = _function.pack(process, args, kwargs)
            return self._submit_function(process, directory, repetitions, name, lab)
        if kwargs:
            raise TypeError("a script's params are a list of values (each rank gets them as --parameters); "
                            "a dict passes keyword arguments to a Python function only")
        path = os.fspath(process)
        domain = self.domain or _core.domain_for_file(entry or path)
        core = self._farm(domain).map(path, repetitions, [str(p) for p in args],
                                      {**lab, "entry": [entry or ""], "name": [name or ""]})
        return Job(core)

    def map_items(self, function: Callable[..., Any], *iterables: Iterable[Any], name: Optional[str] = None,
                  **lab: Any) -> Job:
        """Submits one rank per item, rank ``i`` calling ``function(a[i], b[i], ...)`` over the iterables; returns the Job.

        Like the builtin ``map``, it stops at the shortest iterable. ``lab``
        takes the options of :meth:`map` (max_attempts, timeout, rooms ...).
        """
        if not callable(function):
            raise TypeError(f"map_items needs a callable, not {type(function).__name__}")
        if not iterables:
            raise TypeError("map_items needs at least one iterable of items")
        calls = _function.calls_of(list(zip(*iterables)))
        if not calls:
            raise SubmitError("map needs at least one item", "INVALID_ARGUMENT")
        return self.map_calls(function, calls, name=name, **lab)

    def map_calls(self, function: Callable[..., Any], calls: Sequence[tuple[Sequence[Any], dict[str, Any]]], *,
                  name: Optional[str] = None, first_stream: int = 0, **lab: Any) -> Job:
        """Submits one rank per call, rank ``i`` calling ``function(*calls[i][0], **calls[i][1])``; returns the Job.

        With a ``seed``, call ``i`` draws from random stream ``first_stream + i``.
        """
        directory = _function.pack(function, per_rank=[(tuple(args), dict(kwargs)) for args, kwargs in calls],
                                   first_stream=first_stream)
        return self._submit_function(function, directory, len(calls), name, _lab_options(**lab))

    def _submit_function(self, function: Callable[..., Any], directory: str, repetitions: int, name: Optional[str],
                         lab: dict[str, Any]) -> Job:
        try:
            # A session's nodes see this interpreter where this process does.
            farm = self._farm(_function.domain(self.pool is not None or _embedded(self.coordinator)))
            label = name or getattr(function, "__qualname__", "function")
            core = farm.map(directory, repetitions, [],
                            {**lab, "entry": [_function.ENTRY], "name": [label], "warm_runner": ["true"]})
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return Job(core, function_mode=True)

    def __repr__(self) -> str:
        return f"<pesc.Farm domain={self.domain!r} coordinator={self.coordinator!r}>"


def _lab_options(*, max_attempts: int = 1, timeout: Optional[float] = None,
                 checkpoint_interval: Optional[float] = None, rooms: Iterable[str] = (), same_machine: bool = False,
                 shared: Iterable[Union[str, os.PathLike]] = (), memory: Union[int, str, None] = None,
                 cpu_time: Optional[float] = None, open_files: int = 0, processes: int = 0,
                 output_size: Union[int, str, None] = None, network: bool = False, parallel: bool = False,
                 no_duplicates: bool = False, gpus: int = 0, min_capability: Optional[float] = None,
                 seed: Optional[int] = None, notify: Union[str, Iterable[str]] = ()) -> dict[str, Any]:
    """The lab options of :meth:`Farm.map` by name, as text, as the core reads them
    (``pesc::map_options_from``, which checks them); an unknown one is a TypeError naming it."""
    _check_seed(seed)
    given = dict(max_attempts=max_attempts, timeout=timeout, checkpoint_interval=checkpoint_interval,
                 rooms=list(rooms), same_machine=same_machine, shared=[os.fspath(item) for item in shared],
                 memory=memory, cpu_time=cpu_time, open_files=open_files, processes=processes,
                 output_size=output_size, network=network, parallel=parallel, no_duplicates=no_duplicates,
                 gpus=gpus, min_capability=min_capability, seed=seed,
                 notify=[notify] if isinstance(notify, str) else list(notify))
    return {name: _as_texts(value) for name, value in given.items() if value is not None}


def _as_texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


def _check_seed(seed: Any) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be from 0 to 2**64-1, not {seed}")


def _split_params(params: Union[Iterable[Any], Mapping[str, Any]]) -> tuple[list[Any], dict[str, Any]]:
    """A dict of params is keyword arguments; anything else iterable, positional ones."""
    if isinstance(params, Mapping):
        return [], dict(params)
    if isinstance(params, (str, bytes)):
        raise TypeError(f"params is a list of values, not a {type(params).__name__} (wrap it: params=[...])")
    return list(params), {}


def _check_repetitions(repetitions: Any) -> None:
    if isinstance(repetitions, bool) or not isinstance(repetitions, int):
        raise TypeError(f"repetitions must be an int, not {type(repetitions).__name__}")
    if repetitions < 1:
        raise SubmitError(f"repetitions must be at least 1, not {repetitions}", "INVALID_ARGUMENT")


def run(process: Process, repetitions: int, params: Union[Iterable[Any], Mapping[str, Any]] = (), *, coordinator: Optional[str] = None,
        domain: Optional[str] = None, entry: Optional[str] = None, progress: bool = True, slots: int = 0,
        pool: Optional[PoolOptions] = None, **lab: Any) -> Results:
    """Runs ``process`` as ranks 0..repetitions-1 and waits for every rank.

    Args:
        process: a script or binary, a directory or tar/zip archive (with
            ``entry``), or a Python function called as ``fn(rank, *params)``.
        repetitions: how many ranks.
        params: the parameters every rank gets (``str(p)`` for scripts, the
            objects themselves for functions).
        coordinator: ``"host:port"`` of a pesc-coordinator; default
            ``$PESC_COORDINATOR``, else an embedded farm in this process.
        domain: python, R, shell, java, native or a command template with
            ``{entry}``; default inferred from the file name (.py is python).
        entry: the file to run inside a directory or archive process.
        progress: show a progress bar (tqdm if installed) while waiting.
        slots: ranks run at once on the embedded farm (default: cores).
        pool: run on a batch system's nodes through a session of pilots
            that ends with this call (see :class:`Farm`).
        **lab: max_attempts, timeout, checkpoint_interval, rooms,
            same_machine, shared, limits (memory, cpu_time, open_files,
            processes, output_size), network, parallel, no_duplicates,
            gpus, min_capability, seed: see ``Farm.map``.

    Returns:
        Results in rank order; ``.values`` holds a function's return values.

    Raises:
        SubmitError: the job was refused, or the function or a parameter
            cannot be pickled (nothing ran).
        FarmUnavailable: the coordinator cannot be reached.
        KeyboardInterrupt: Ctrl-C; the job was cancelled on the farm first.
    """
    with Farm(domain, coordinator, slots=slots, pool=pool) as farm:
        return farm.map(process, repetitions, params, entry=entry, **lab).wait(progress=progress)


def map(function: Callable[..., Any], *iterables: Iterable[Any], coordinator: Optional[str] = None,
        progress: bool = True, slots: int = 0, pool: Optional[PoolOptions] = None, **lab: Any) -> list[Any]:
    """Like the builtin ``map``, on the farm: ``function(a[i], b[i], ...)`` as rank ``i``, values in item order.

    Stops at the shortest iterable; no items give ``[]``. ``lab`` takes the
    options of :meth:`Farm.map` (max_attempts, timeout, rooms, memory ...);
    ``pool`` runs the calls on a batch system's nodes, as in :func:`run`.
    Raises RankFailed (with the remote traceback) if a call raised, and
    SubmitError if the function or an item cannot be pickled.
    """
    if not iterables:
        raise TypeError("map() needs at least one iterable of items, as the builtin map does")
    items = list(zip(*iterables))
    if not items:
        return []
    with Farm(coordinator=coordinator, slots=slots, pool=pool) as farm:
        return farm.map_items(function, *zip(*items), **lab).wait(progress=progress).values


def logs(job: Union[Job, str], rank: int, *, follow: bool = True, coordinator: Optional[str] = None) -> Iterator[str]:
    """A rank's output.txt as text chunks while it runs (``pesc logs JOB RANK -f``); see :meth:`Job.logs`.

    ``job`` is a :class:`Job` or the id of a job on ``coordinator`` (default
    ``$PESC_COORDINATOR``).
    """
    if isinstance(job, Job):
        return job.logs(rank, follow)
    return _text_of(Farm(coordinator=coordinator)._farm("native").log(job, rank, follow))


# How long one wait for a rank's output lasts before Python may handle Ctrl-C.
_LOG_POLL = 0.2


def _text_of(log: _core.RankLog) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may straddle two pieces
    while not log.ended:
        piece = log.next(_LOG_POLL)
        if piece and (text := decoder.decode(piece)):
            yield text
    if rest := decoder.decode(b"", final=True):
        yield rest


from ._executor import Executor  # noqa: E402  (it builds on Farm)

_joblib.register_when_joblib_loads()
