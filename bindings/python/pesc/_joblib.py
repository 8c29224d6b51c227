"""joblib's "pesc" backend: ``with joblib.parallel_backend("pesc"): Parallel()(delayed(f)(x) for x in xs)``.

joblib is slow to import (most of a second), so ``import pesc`` does not
import it: it registers the backend when joblib's ``parallel`` module is
loaded, whichever is imported first. Arguments of ``parallel_backend`` go to
:class:`pesc.Executor` (``coordinator=``, ``slots=``, the lab options).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any, Optional

BACKEND = "pesc"
_CALLS_IN_FLIGHT = 256
_PARALLEL = "joblib.parallel"


def register_when_joblib_loads() -> None:
    if _PARALLEL in sys.modules:
        _register(sys.modules[_PARALLEL])
    elif not any(isinstance(finder, _RegisterOnLoad) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnLoad())


class _RegisterOnLoad(importlib.abc.MetaPathFinder):
    """Finds joblib.parallel as the path finder would, and registers the backend once the module has run."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if name != _PARALLEL:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            _register(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _register(parallel: Any) -> None:
    parallel.register_parallel_backend(BACKEND, _backend_class())


def _backend_class() -> type:
    from joblib._parallel_backends import AutoBatchingMixin, ParallelBackendBase

    class PescBackend(AutoBatchingMixin, ParallelBackendBase):
        """Each joblib batch is a call on a :class:`pesc.Executor`; batches dispatched together form one job."""

        supports_timeout = True
        supports_sharedmem = False

        def __init__(self, coordinator: Optional[str] = None, slots: int = 0, **lab: Any) -> None:
            super().__init__()
            self._executor_options = dict(coordinator=coordinator, slots=slots, **lab)
            self._executor: Any = None

        def effective_n_jobs(self, n_jobs: Optional[int]) -> int:
            """How many calls joblib keeps in flight; the farm, not this, decides how many run at once.

            Calls dispatched together travel as one job, and a job costs a
            warm interpreter's start, so the default keeps many in flight.
            """
            if n_jobs == 0:
                raise ValueError("n_jobs == 0 in Parallel has no meaning")
            if n_jobs is not None and n_jobs > 1:
                return n_jobs
            return _CALLS_IN_FLIGHT

        def configure(self, n_jobs: int = 1, parallel: Any = None, **backend_args: Any) -> int:
            from ._executor import Executor

            self.parallel = parallel
            if self._executor is None:
                self._executor = Executor(**self._executor_options)
            return self.effective_n_jobs(n_jobs)

        def apply_async(self, func: Any, callback: Any = None) -> Any:
            future = self._executor.submit(func)
            if callback is not None:
                future.add_done_callback(lambda done: done.exception() is None and callback(done.result()))
            return _Result(future)

        def terminate(self) -> None:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

        def abort_everything(self, ensure_ready: bool = True) -> None:
            self.terminate()
            if ensure_ready:
                self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)

    return PescBackend


class _Result:
    """What joblib waits on: ``get(timeout)`` returns the batch's results or raises its exception."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def get(self, timeout: Optional[float] = None) -> Any:
        return self._future.result(timeout)
