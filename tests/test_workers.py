"""Worker processes: the deadline cuts an image off mid-prediction and the process still exits 0; a
worker that dies costs its image only; SIGKILL of the runner at any moment leaves a valid file."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecgdigit.digitized import Digitized
from ecgdigit.io.submission import read_submission, validate_submission
from ecgdigit.predictor_spec import LoadedPredictor
from ecgdigit.runner import run_submission

from helpers import REPO  # noqa: E402
from test_runner import make_competition, ramp_predictor

LIB, TESTS = str(REPO / "lib"), str(REPO / "tests")


def busy_torch(image: np.ndarray, seconds: float = 20.0) -> Digitized:
    """Native work for a long time (a conv in torch's thread pool): what the deadline used to cut
    from a daemon thread, aborting the interpreter at exit."""
    import torch

    x, conv = torch.randn(1, 32, 256, 256), torch.nn.Conv2d(32, 32, 3, padding=1)
    t_end = time.monotonic() + seconds
    with torch.inference_mode():
        while time.monotonic() < t_end:
            conv(x)
    return ramp_predictor(image)


@dataclass(frozen=True)
class BusyTorch:
    """Built in each worker (load()), as a PredictorSpec is."""

    def load(self) -> LoadedPredictor:
        return LoadedPredictor(busy_torch)


@dataclass(frozen=True)
class DiesOn:
    """A worker process that dies (as one killed for memory does) on the image with this pixel sum."""

    image_sum: int

    def load(self) -> LoadedPredictor:
        return LoadedPredictor(self.predict_or_die)

    def predict_or_die(self, image: np.ndarray) -> Digitized:
        if int(image.sum()) == self.image_sum:
            os._exit(137)
        return ramp_predictor(image)


def run_script(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=os.pathsep.join([LIB, TESTS])))


def test_deadline_cut_mid_prediction_exits_cleanly_every_time(tmp_path):
    """The cut comes while torch is busy in a worker: rc 0, valid file, in time, 3 times."""
    comp = make_competition(tmp_path / "comp")
    for k in range(3):
        out = tmp_path / f"s{k}.csv"
        r = run_script(f"""
            from ecgdigit.runner import run_submission
            from test_workers import BusyTorch
            r = run_submission({str(comp)!r}, {str(out)!r}, predictor=BusyTorch(), deadline_s=4.0,
                               workers={1 + k % 2}, progress=False)
            assert r.stopped_by_deadline and r.n_predicted == 0, r
            print("TOTAL", r.total_s)
        """)
        assert r.returncode == 0, f"run {k}: rc {r.returncode}\n{r.stderr[-2000:]}"
        assert float(r.stdout.split("TOTAL")[1]) < 4.5
        validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))


def test_deadline_in_process_never_abandons_a_running_prediction(tmp_path):
    """A predictor object runs in the calling process: the deadline stops the run after the image
    that is running (a thread left inside torch at exit is what aborted with rc 134)."""
    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "s.csv"
    r = run_script(f"""
        import functools
        from ecgdigit.runner import run_submission
        from test_workers import busy_torch
        r = run_submission({str(comp)!r}, {str(out)!r}, predictor=functools.partial(busy_torch, seconds=2.5),
                           deadline_s=2.0, workers=2, progress=False)
        assert r.stopped_by_deadline and r.n_predicted == 1, r
    """)
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stderr[-2000:]}"
    validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))


def test_a_dying_worker_costs_its_image_only(tmp_path):
    from ecgdigit.io.competition_files import read_image

    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "s.csv"
    dies = DiesOn(int(read_image(comp / "test" / "1002.png").sum()))
    report = run_submission(comp, out, predictor=dies, workers=2, progress=False)
    failed = dict(report.failures)
    assert list(failed) == ["1002"] and "worker died (exit code 137)" in failed["1002"]
    assert report.n_predicted == 3
    validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))
    sub = read_submission(out)
    image = sub["id"].str.split("_").str[0]
    assert np.all(sub["value"][image == "1002"] == 0.0)
    assert np.abs(sub["value"][image == "1004"]).max() > 0.05


def test_sigkill_at_any_moment_leaves_a_valid_file(tmp_path):
    """Fallback first, then atomic rewrites (temp file + os.replace) after every image: killing the
    runner (and so its workers' pipes) at a random moment never leaves a partial file."""
    ids = tuple(str(5000 + i) for i in range(40))
    comp = make_competition(tmp_path / "comp", ids=ids, fs=(500,) * len(ids))
    test_df = pd.read_csv(comp / "test.csv", dtype={"id": str})
    rng = random.Random(os.getpid())
    killed_running = 0
    for k in range(4):
        out = tmp_path / f"s{k}.csv"
        env = dict(os.environ, PYTHONPATH=LIB, ECGDIGIT_PREDICTOR="zeros:0.02")
        code = ("import ecgdigit.runner as R; R.MAX_FLUSH_SHARE = 1.0; "  # rewrite after every image
                f"R.run_submission({str(comp)!r}, {str(out)!r}, flush_every_s=0.0, workers=2, progress=False)")
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t_end = time.monotonic() + 30
            while not out.exists():
                assert proc.poll() is None and time.monotonic() < t_end, "no first write"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 1.5))
            proc.send_signal(signal.SIGKILL)
            killed_running += proc.wait() == -signal.SIGKILL
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the orphaned workers of this run only
            except ProcessLookupError:
                pass
        validate_submission(out, test_df)
    assert killed_running >= 2, "the runs ended before the kill: nothing was tested"


def test_default_workers_are_the_usable_cores_or_the_env(monkeypatch):
    import pytest

    from ecgdigit.worker_pool import available_cores, default_workers

    monkeypatch.delenv("ECGDIGIT_WORKERS", raising=False)
    assert default_workers() == available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("ECGDIGIT_WORKERS", "3")
    assert default_workers() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("ECGDIGIT_WORKERS", bad)
        with pytest.raises(ValueError, match="ECGDIGIT_WORKERS"):
            default_workers()


def test_workers_predict_what_this_process_predicts(tmp_path):
    """The same predictor in this process and in 2 workers: the same bytes (results arrive in any
    order; the file is written in test.csv order)."""
    comp = make_competition(tmp_path / "comp")
    here = run_submission(comp, tmp_path / "here.csv", predictor=ramp_predictor, progress=False)
    there = run_submission(comp, tmp_path / "there.csv", predictor=Ramp(), workers=2, progress=False)
    assert (here.n_predicted, there.n_predicted, there.workers) == (4, 4, 2)
    assert (tmp_path / "here.csv").read_bytes() == (tmp_path / "there.csv").read_bytes()


@dataclass(frozen=True)
class Ramp:
    def load(self) -> LoadedPredictor:
        return LoadedPredictor(ramp_predictor)
