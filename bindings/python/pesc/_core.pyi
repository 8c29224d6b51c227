"""Stubs for pesc._core, the compiled half of pesc (see core.cc). Use the pesc package instead."""

import datetime
import os
from typing import List, Optional, Union

def domain_for_file(file_name: str) -> str: ...

VERSION: str

class Progress:
    @property
    def total(self) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def queued_at_workers(self) -> int: ...
    @property
    def succeeded(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def cancelled(self) -> int: ...
    @property
    def waiting(self) -> str: ...
    @property
    def finished(self) -> int: ...

class RankResult:
    @property
    def rank(self) -> int: ...
    @property
    def status(self) -> str:
        """"pending", "running", "succeeded", "failed" or "cancelled"."""
    @property
    def exit_code(self) -> int: ...
    @property
    def signal(self) -> int: ...
    @property
    def output(self) -> str: ...
    @property
    def worker(self) -> str: ...
    @property
    def duration(self) -> float:
        """Seconds."""
    @property
    def start(self) -> datetime.datetime: ...
    @property
    def end(self) -> datetime.datetime: ...
    @property
    def cpu_time(self) -> float:
        """Seconds."""
    @property
    def max_rss_kb(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def has_files(self) -> bool: ...
    @property
    def error(self) -> str: ...
    @property
    def limit_exceeded(self) -> str:
        """"memory", "cpu" or "output" when the rank was killed for that limit; else ""."""
    @property
    def failure_class(self) -> str:
        """Whose fault a failure was: "job", "rank", "worker" or "owner"; "" when the rank did not fail."""
    @property
    def left_out(self) -> List[str]:
        """Entries of output_dir left out of its files (links leading outside it)."""
    @property
    def ok(self) -> bool: ...

class WorkerReport:
    worker: str
    first_lane: int
    slots: int
    ranks: int
    failed: int
    busy: float
    mean_rank_time: float
    max_rank_time: float
    max_rank: int
    retried_ranks: int
    lost_attempts: int
    utilization: float
    paused: float

class PausedStretch:
    """A worker's pause over its lanes, in seconds since the job was submitted."""
    first_lane: int
    lanes: int
    start: float
    end: float
    reason: str

class TimelineBar:
    rank: int
    lane: int
    start: float
    end: float
    status: str

class JobReport:
    """Durations in seconds; see pesc.h's JobReport for what each figure means."""
    job_id: str
    ranks: int
    succeeded: int
    failed: int
    cancelled: int
    never_ran: int
    slots: int
    started: datetime.datetime
    finished: datetime.datetime
    wall: float
    rank_time: float
    speedup: float
    efficiency: float
    lost: float
    lost_parts: list[tuple[str, float]]
    overhead_per_rank: float
    lanes: list[str]
    workers: list[WorkerReport]
    timeline: list[TimelineBar]
    paused: float
    paused_reasons: list[str]
    paused_stretches: list[PausedStretch]
    def to_text(self) -> str: ...
    def timeline_svg(self) -> str: ...

class Results:
    def __len__(self) -> int: ...
    def report(self) -> JobReport: ...
    def __getitem__(self, rank: int) -> RankResult: ...
    def output(self) -> str: ...
    def failed_ranks(self) -> list[int]: ...
    @property
    def ok(self) -> bool: ...
    @property
    def job_id(self) -> str: ...
    def save(self, dir: Union[str, os.PathLike[str]]) -> None: ...
    def read_file(self, rank: int, relative: Union[str, os.PathLike[str]]) -> bytes: ...
    def retry(self, ranks: list[int] = ...) -> Job: ...

class RankLog:
    def next(self, timeout: float) -> Optional[bytes]: ...
    @property
    def ended(self) -> bool: ...

class Job:
    @property
    def id(self) -> str: ...
    @property
    def repetitions(self) -> int: ...
    def next(self, timeout: float = -1.0) -> Optional[RankResult]: ...
    def results(self) -> Results: ...
    def progress(self) -> Progress: ...
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def retry(self, ranks: list[int] = ...) -> list[int]: ...
    def log(self, rank: int, follow: bool = True) -> RankLog: ...

class Farm:
    def __init__(self, domain: str, coordinator: str = "", state_dir: Union[str, os.PathLike[str]] = "",
                 slots: int = 0, user: str = "") -> None: ...
    def map(self, process: Union[str, os.PathLike[str]], repetitions: int, parameters: list[str] = ...,
            options: dict[str, list[str]] = ...) -> Job: ...
    def attach(self, job_id: str) -> Job: ...
    def remove_job(self, job_id: str) -> None: ...
    def log(self, job_id: str, rank: int, follow: bool = True) -> RankLog: ...
    def describe(self) -> str: ...
