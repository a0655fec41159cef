"""Import the model's libraries in the background as soon as a Python worker process starts.

Why: after a restart, Flink starts a new Python worker, the Beam harness imports itself and
waits for the JVM to finish initialising the job's tasks, and only then are the first bundle's
functions unpickled, which imports torch and the model (2-3 s of CPU on an idle machine, more
while the TaskManager is busy). Started from the worker's ``sitecustomize`` (written into the
shipped Python bundle by ``jobs.recommend.python_bundle``), the same imports overlap the
harness's start and its waiting, so the model can open sooner (README "Recovery time").

The import is the same one the worker would do anyway, so a failure here changes nothing: it
is recorded and the real import raises it where it always did. Nothing happens outside a
PyFlink process-mode worker (the client, tests, thread mode), whose command line differs.

>>> is_python_worker(["/venv/bin/python", "-m", "pyflink.fn_execution.beam.beam_boot", "--id=1-1"])
True
>>> is_python_worker(["/venv/bin/python", "-m", "pytest"])
False
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

WORKER_MODULE = "pyflink.fn_execution.beam.beam_boot"   # what pyflink-udf-runner.sh runs with -m
MODULES = ("torch", "operators.model")                 # the slow part of unpickling the model

# What sitecustomize.py at the root of the shipped bundle holds (PyFlink puts the bundle on the
# worker's PYTHONPATH, so the interpreter's site module imports it at start).
SITECUSTOMIZE = ('"""Written by jobs.recommend.python_bundle: see operators/warmup.py."""\n'
                 "from operators.warmup import start_in_worker\n\nstart_in_worker()\n")


@dataclass
class Preload:
    """The background import's outcome: when it started and finished (monotonic seconds), or why it failed."""

    modules: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None

    def run(self) -> None:
        try:
            for module in self.modules:
                importlib.import_module(module)
        except BaseException as exc:   # noqa: BLE001 - the worker's own import raises it again, where it belongs
            self.error = f"{type(exc).__name__}: {exc}"
        self.finished = time.monotonic()

    def summary(self, now: float | None = None) -> str:
        """For the model's open log line.

        >>> Preload(("torch",), started=10.0, finished=12.5).summary()
        'torch preloaded in 2.5 s'
        >>> Preload(("torch",), started=10.0).summary(now=11.0)
        'torch preload still running after 1.0 s'
        """
        names = ", ".join(self.modules)
        if self.error is not None:
            return f"{names} preload failed ({self.error})"
        if self.finished is None:
            waited = (time.monotonic() if now is None else now) - self.started
            return f"{names} preload still running after {waited:.1f} s"
        return f"{names} preloaded in {self.finished - self.started:.1f} s"


preload: Preload | None = None   # set in a worker that started one


def is_python_worker(argv: Sequence[str]) -> bool:
    """True for the command line of a PyFlink process-mode Python worker."""
    return WORKER_MODULE in argv


def start(modules: Sequence[str] = MODULES) -> Preload:
    """Import ``modules`` in a daemon thread; the returned record fills in when it is done."""
    global preload
    preload = Preload(tuple(modules))
    threading.Thread(target=preload.run, name="streamrec-preload", daemon=True).start()
    return preload


def start_in_worker() -> None:
    """``sitecustomize``'s entry point: start the preload in a Python worker, do nothing elsewhere."""
    if is_python_worker(getattr(sys, "orig_argv", sys.argv)):
        start()
