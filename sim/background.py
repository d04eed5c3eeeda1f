"""Work done in a forked child process while the run goes on (the figures of a comparison run are drawn
while its tables are analysed and written: drawing is CPU-bound and independent of the tables).

A forked child inherits the parent's memory (data, imported modules, matplotlib settings), so it
computes exactly what the parent would have, with nothing pickled on the way in; only the result
(or the exception) comes back through a pipe. Where fork is not available (not Linux) or not allowed
(a daemonic process), :func:`start` runs the function at once in the calling process instead: same
result, no overlap.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any


class BackgroundError(RuntimeError):
    """An exception raised in the child that could not be sent back as itself (its traceback is the message)."""


def _child(conn, fn: Callable, args: tuple, kwargs: dict) -> None:
    try:
        out = ("ok", fn(*args, **kwargs))
    except BaseException as exc:            # noqa: BLE001 - everything goes back to the parent
        text = "".join(traceback.format_exception(exc))
        try:
            pickle.loads(pickle.dumps(exc))     # it must also be rebuilt in the parent
            out = ("error", (exc, text))
        except Exception:
            out = ("error", (BackgroundError(text), text))
    try:
        conn.send(out)
    finally:
        conn.close()


class Task:
    """A function running in a child process (or already run, when fork is not available)."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        self._done, self._value, self._proc, self._conn = False, None, None, None
        if fork_available():
            ctx = multiprocessing.get_context("fork")
            recv, send = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_child, args=(send, fn, args, kwargs), daemon=True)
            self._proc.start()
            send.close()
            self._conn = recv
        else:
            self._value, self._done = ("ok", fn(*args, **kwargs)), True

    def result(self) -> Any:
        """The function's return value (waits for the child); its exception is raised here."""
        if not self._done:
            try:
                self._value = self._conn.recv()
            except EOFError:
                self._proc.join()
                self._value = ("error", (BackgroundError(f"background process ended with exit code "
                                                         f"{self._proc.exitcode} and no result"), ""))
            finally:
                self._conn.close()
            self._proc.join()
            self._done = True
        kind, value = self._value
        if kind == "error":
            raise value[0]
        return value

    def cancel(self) -> None:
        """Stop the child if it still runs (a run that fails elsewhere does not wait for its figures)."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        if not self._done:
            self._value, self._done = ("error", (BackgroundError("cancelled before it finished"), "")), True


def fork_available() -> bool:
    """True on Linux outside daemonic processes (which may not have children)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon and hasattr(os, "fork"))


def start(fn: Callable, *args, **kwargs) -> Task:
    """Run ``fn(*args, **kwargs)`` in a forked child; :meth:`Task.result` returns its value."""
    return Task(fn, args, kwargs)
