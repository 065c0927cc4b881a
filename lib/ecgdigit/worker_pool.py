"""Predict test images in worker processes (ecgdigit.prediction_worker), one image per worker at a
time, under a hard deadline: at stop_at every worker still busy is terminated and its image keeps
the fallback. Results arrive in any order; the submission is written in test.csv order, so the file
does not depend on the number of workers.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

logger = logging.getLogger(__name__)

WORKERS_ENV = "ECGDIGIT_WORKERS"
# torch/OpenCV threads per worker: ONE, whatever the number of workers. Their reductions differ in the
# last bits with the thread count (measured: one submission value in ~800 K moved with 2 threads
# against 1 through untrained stage-1/2 models), and the file must not depend on --workers.
WORKER_THREADS = 1
STOP_GRACE_S = 2.0  # a worker told to stop (or terminated) gets this long before SIGKILL
POLL_S = 1.0  # longest wait for a message, so that the deadline is looked at this often
MAX_RESPAWNS_PER_WORKER = 2  # a worker that died (out of memory, crash) is replaced this often


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """$ECGDIGIT_WORKERS, else the cores this process may use."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"${WORKERS_ENV}={env!r}: expected a positive integer") from None
        if n < 1:
            raise ValueError(f"${WORKERS_ENV}={env!r}: expected a positive integer")
        return n
    return available_cores()


class WorkerLoadError(RuntimeError):
    """No worker could build the predictor; `strict` when it was a --strict-weights refusal."""

    def __init__(self, message: str, strict: bool):
        super().__init__(message)
        self.strict = strict


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    to_child: Connection
    from_child: Connection
    ready: bool = False
    task: str | None = None  # the image id being predicted


@dataclass
class PoolOutcome:
    warnings: list[str] = field(default_factory=list)  # the workers' load warnings, once each
    cut_by_deadline: list[str] = field(default_factory=list)  # images running when the deadline came
    not_started: list[str] = field(default_factory=list)


class WorkerPool:
    def __init__(self, n_workers: int, predictor, root: Path):
        self.n = n_workers
        self.predictor = predictor
        self.root = Path(root)
        self.threads = WORKER_THREADS
        self.workers: list[_Worker] = []
        self.respawns = 0

    # ------------------------------------------------------------ processes
    def _spawn(self, index: int) -> _Worker:
        r_task, w_task = os.pipe()
        r_result, w_result = os.pipe()
        lib = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH")) if p))
        try:
            proc = subprocess.Popen([sys.executable, "-m", "ecgdigit.prediction_worker", str(r_task), str(w_result)],
                                    pass_fds=(r_task, w_result), env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(r_task)
            os.close(w_result)
        worker = _Worker(index, proc, Connection(w_task, readable=False), Connection(r_result, writable=False))
        worker.to_child.send({"sys_path": list(sys.path), "log_level": logging.getLogger().getEffectiveLevel(),
                              "threads": self.threads, "root": str(self.root), "index": index})
        worker.to_child.send(self.predictor)
        return worker

    def start(self) -> None:
        self.workers = [self._spawn(i) for i in range(self.n)]
        logger.info("%d worker process(es) started, %d thread(s) each", self.n, self.threads)

    def close(self) -> None:
        """Stop every worker: idle ones are told to; busy ones (the deadline came) and ones still
        loading their predictor are terminated."""
        for w in self.workers:
            try:
                if w.ready and w.task is None:
                    w.to_child.send(None)
                else:
                    w.proc.terminate()
            except (OSError, ValueError):
                pass
        end = time.monotonic() + STOP_GRACE_S
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            w.to_child.close()
            w.from_child.close()
        self.workers = []

    # ------------------------------------------------------------ the loop
    def run(self, tasks: list[tuple[str, list]], on_result, stop_at: float | None) -> PoolOutcome:
        """Predict every (image_id, leads) task; on_result(image_id, rows, failure, seconds, is_fallback)
        per finished image. Returns what the deadline cut off. Raises WorkerLoadError when no worker
        could build the predictor (or every worker died before it was ready)."""
        outcome = PoolOutcome()
        pending = deque(tasks)
        load_errors: list[tuple[str, bool]] = []
        self.start()
        try:
            while pending or any(w.task for w in self.workers):
                now = time.monotonic()
                if stop_at is not None and now >= stop_at:
                    break
                if not self.workers:
                    error, strict = load_errors[0] if load_errors else (
                        "every worker process exited before it was ready (its log is above)", False)
                    raise WorkerLoadError(f"predictor could not be loaded: {error}", strict)
                for w in self.workers:
                    if w.ready and w.task is None and pending:
                        image_id, leads = pending.popleft()
                        w.to_child.send((image_id, leads))
                        w.task = image_id
                timeout = POLL_S if stop_at is None else max(0.0, min(POLL_S, stop_at - now))
                for conn in wait([w.from_child for w in self.workers], timeout=timeout):
                    w = next(w for w in self.workers if w.from_child is conn)
                    try:
                        msg = conn.recv()
                    except (EOFError, OSError):  # it exited: a load error already said why, or it died
                        self._lost(w, on_result, respawn=bool(pending))
                        continue
                    if msg[0] == "ready":
                        _, warnings, error, strict = msg
                        if error is not None:
                            load_errors.append((error, strict))
                            continue  # it exits by itself; its closed pipe removes it above
                        w.ready = True
                        for text in warnings:
                            if text not in outcome.warnings:
                                outcome.warnings.append(text)
                                logger.warning("%s", text)
                    else:
                        _, image_id, rows, failure, seconds, fallback = msg
                        w.task = None
                        on_result(image_id, rows, failure, seconds, fallback)
            outcome.cut_by_deadline = [w.task for w in self.workers if w.task]
            outcome.not_started = [image_id for image_id, _ in pending]
        finally:
            self.close()
        return outcome

    def _lost(self, w: _Worker, on_result, respawn: bool) -> None:
        """A worker's pipe closed. Died while predicting (killed for memory, a crash in native code):
        its image keeps the fallback, and a fresh worker takes its place while respawns last."""
        code = w.proc.wait()
        if w.task is not None:
            logger.warning("image %s: worker %d died (exit code %s), fallback kept", w.task, w.index, code)
            on_result(w.task, None, f"worker died (exit code {code})", 0.0, False)
            w.task = None
        w.to_child.close()
        w.from_child.close()
        self.workers.remove(w)
        if w.ready and respawn and self.respawns < MAX_RESPAWNS_PER_WORKER * self.n:
            self.respawns += 1
            self.workers.append(self._spawn(w.index))
