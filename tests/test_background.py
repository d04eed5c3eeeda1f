"""sim.background: a function run in a forked child returns its value or raises its exception in the parent."""

import os

import pytest

from sim import background


def _square_and_pid(x):
    return x * x, os.getpid()


class _Unpicklable(Exception):
    def __init__(self, msg, handle):
        super().__init__(msg)
        self.handle = handle

    def __reduce__(self):
        raise TypeError("cannot pickle")


def _fail(kind):
    if kind == "value":
        raise ValueError("bad value in the child")
    raise _Unpicklable("unpicklable in the child", lambda: None)


def test_result_from_child():
    task = background.start(_square_and_pid, 7)
    value, pid = task.result()
    assert value == 49
    assert pid != os.getpid() or not background.fork_available()
    assert task.result() == (49, pid)            # a second call returns the same value


def test_exception_raised_in_parent():
    with pytest.raises(ValueError, match="bad value in the child"):
        background.start(_fail, "value").result()
    with pytest.raises(Exception, match="unpicklable in the child"):
        background.start(_fail, "other").result()


def test_without_fork_runs_in_process(monkeypatch):
    monkeypatch.setattr(background, "fork_available", lambda: False)
    task = background.start(_square_and_pid, 3)
    assert task.result() == (9, os.getpid())
    with pytest.raises(ValueError):
        background.start(_fail, "value").result()


def test_cancel_stops_the_child(tmp_path):
    import time

    task = background.start(time.sleep, 30)
    t0 = time.perf_counter()
    task.cancel()
    assert time.perf_counter() - t0 < 10
    with pytest.raises(background.BackgroundError):
        task.result()


class _NoRebuild(Exception):
    def __init__(self, msg, extra):
        super().__init__(msg)


def _fail_no_rebuild():
    raise _NoRebuild("not rebuilt in the parent", 1)


def test_exception_that_cannot_be_rebuilt():
    with pytest.raises(background.BackgroundError, match="not rebuilt in the parent"):
        background.start(_fail_no_rebuild).result()
