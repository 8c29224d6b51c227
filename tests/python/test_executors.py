"""The interfaces Python users already call: concurrent.futures, joblib, the builtin map, keyword params, own modules."""

import concurrent.futures as cf
import sys
import textwrap

import joblib
import pytest

import pesc


def test_executor_futures_work_with_as_completed_and_wait(coordinator):
    with pesc.Executor(coordinator) as executor:
        futures = [executor.submit(pow, i, 2) for i in range(30)]
        assert sorted(f.result() for f in cf.as_completed(futures, timeout=120)) == [i * i for i in range(30)]
        done, not_done = cf.wait(futures, timeout=120)
        assert len(done) == 30 and not not_done
        assert [f.result() for f in futures] == [i * i for i in range(30)]
        assert list(executor.map(divmod, [7, 9], [2, 4])) == [(3, 1), (2, 1)]
        assert executor.submit(lambda *a, **k: (a, k), 1, b=2).result() == ((1,), {"b": 2})


def test_executor_raises_the_calls_own_exception_with_the_remote_traceback(coordinator):
    def fragile(x):
        raise KeyError(f"no {x}")

    with pesc.Executor(coordinator) as executor:
        good, bad = executor.submit(abs, -3), executor.submit(fragile, "key")
        assert good.result() == 3
        with pytest.raises(KeyError, match="no key") as caught:
            bad.result()
    assert isinstance(caught.value.__cause__, pesc.RankFailed)
    assert "in fragile" in caught.value.__cause__.remote_traceback


def test_one_unpicklable_call_fails_alone():
    import threading

    with pesc.Executor(slots=2) as executor:
        good, bad = executor.submit(abs, -1), executor.submit(abs, threading.Lock())
        assert good.result() == 1
        with pytest.raises(pesc.SubmitError, match="cannot pickle"):
            bad.result()


def test_executor_shutdown():
    executor = pesc.Executor(slots=2)
    assert executor.submit(abs, -5).result() == 5
    executor.shutdown(cancel_futures=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(abs, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        pesc.Executor(colour="red")


def test_joblib_backend_keeps_order_and_raises_the_original_exception(coordinator):
    with joblib.parallel_backend("pesc", coordinator=coordinator):
        assert joblib.Parallel()(joblib.delayed(pow)(i, 3) for i in range(40)) == [i ** 3 for i in range(40)]
        with pytest.raises(ZeroDivisionError):
            joblib.Parallel()(joblib.delayed(divmod)(1, i) for i in range(-2, 3))


def test_map_is_like_the_builtin(coordinator):
    assert pesc.map(lambda a, b: a * b, [1, 2, 3], (10, 20), coordinator=coordinator, progress=False) == [10, 40]
    assert pesc.map(abs, [], coordinator=coordinator) == []
    assert pesc.map(abs, [-1, -2], coordinator=coordinator, progress=False, max_attempts=2, timeout=60) == [1, 2]
    with pytest.raises(TypeError, match="at least one iterable"):
        pesc.map(abs)


def test_dict_params_are_keyword_arguments(coordinator, tmp_path):
    res = pesc.run(lambda rank, n, scale=1: rank * n * scale, 3, params={"n": 2, "scale": 5},
                   coordinator=coordinator, progress=False)
    assert res.values == [0, 10, 20]
    script = tmp_path / "sim.py"
    script.write_text("print('hi')\n")
    with pytest.raises(TypeError, match="keyword arguments to a Python function only"):
        pesc.run(script, 2, params={"n": 2}, coordinator=coordinator, progress=False)


def test_functions_from_the_users_own_module_travel_with_the_job(coordinator, tmp_path, monkeypatch):
    (tmp_path / "labhelpers.py").write_text(textwrap.dedent("""
        import labconstants

        def scaled(x):
            return x * labconstants.FACTOR
    """))
    (tmp_path / "labconstants.py").write_text("FACTOR = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import labhelpers

    try:
        assert pesc.map(labhelpers.scaled, range(4), coordinator=coordinator, progress=False) == [0, 7, 14, 21]
        with pesc.Executor(coordinator) as executor:
            assert executor.submit(labhelpers.scaled, 2).result() == 14
    finally:
        for name in ("labhelpers", "labconstants"):
            sys.modules.pop(name, None)


def test_a_module_the_worker_lacks_is_named(daemons):
    # The loopback worker runs ranks with /usr/bin/python3, which has no pesc
    # package: a function pickled by reference from it cannot load there.
    with pytest.raises(pesc.RankFailed, match="need the module 'pesc'.*install it there"):
        pesc.map(pesc._function.calls_of, [[(1,)]], coordinator=daemons, progress=False)
