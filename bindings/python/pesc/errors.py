"""pesc's exceptions. Every error from the farm arrives as one of these."""

from __future__ import annotations

__all__ = ["PescError", "SubmitError", "FarmUnavailable", "JobCancelled", "JobFailed", "NotFound", "RankFailed"]

# pesc::ErrorCode values (they mirror gRPC status codes).
_CODE_NAMES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}


class PescError(Exception):
    """Base class of every pesc error. ``code`` is the farm's status name, e.g. ``"NOT_FOUND"``."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SubmitError(PescError, ValueError):
    """The job was refused before any rank ran: a bad process, domain, count or an unpicklable function."""


class FarmUnavailable(PescError, ConnectionError):
    """The coordinator could not be reached (or stopped answering)."""


class JobCancelled(PescError):
    """The job was cancelled on the farm."""


class JobFailed(PescError):
    """The job ended early: its first ranks all failed for a reason of the job's own (a file that cannot be
    executed, arguments too long, ...); the message says what to change."""


class NotFound(PescError, LookupError):
    """A job, rank or output file the farm does not have."""


class RankFailed(PescError):
    """A rank of a function-mode job raised (or died); carries the remote traceback.

    Attributes: ``rank``, ``remote_traceback`` (text, as printed on the worker),
    ``output`` (everything the rank printed) and ``exit_code``.
    """

    def __init__(self, rank: int, message: str, remote_traceback: str = "", output: str = "",
                 exit_code: int = 0) -> None:
        text = f"rank {rank} failed: {message}"
        if remote_traceback:
            text += "\n\nRemote traceback (rank %d):\n%s" % (rank, remote_traceback.rstrip())
        super().__init__(text, "ABORTED")
        self.rank = rank
        self.remote_traceback = remote_traceback
        self.output = output
        self.exit_code = exit_code


def from_core(code: int, message: str, during: str = "") -> PescError:
    """The exception for a ``pesc::Error`` (called by ``pesc._core``)."""
    name = _CODE_NAMES.get(code, "UNKNOWN")
    if during == "submit" and name in ("INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OUT_OF_RANGE",
                                      "ALREADY_EXISTS", "PERMISSION_DENIED"):
        return SubmitError(message, name)
    if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        return FarmUnavailable(message, name)
    if name == "CANCELLED":
        return JobCancelled(message, name)
    if name == "NOT_FOUND":
        return NotFound(message, name)
    if name == "FAILED_PRECONDITION":
        return JobFailed(message, name)
    return PescError(message, name)
