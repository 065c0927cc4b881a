"""The time-limited submission run: a valid fallback file first, then real predictions as they finish.

Order of events (the competition kills the notebook at its time limit, and a notebook without a
valid submission.csv scores nothing):
1. read test.csv tolerantly (io.test_csv_tolerant: every requested (id, lead) gets rows; each oddity
   is a warning in the log and in the report);
2. write an all-fallback submission.csv (zeros) and validate it: from here on a valid file exists;
3. build the predictor (a stage whose model cannot be loaded runs classical, loudly) and predict the
   test images, keeping each image's rows in memory. A PredictorSpec runs in worker processes
   (worker_pool; `workers` of them); a predictor object runs in this process;
4. rewrite the file atomically (temp file + os.replace) every `flush_every_s` seconds (less often
   when a write is slow), so that a run killed at any moment leaves a valid file;
5. when the deadline minus a safety margin (measured from the first write) comes, stop: workers
   still busy are terminated, the remaining images keep the fallback; write the final file,
   validate it, then replace.

A missing/unreadable image or a predictor exception costs that image only (fallback + warning).
No prediction ever runs in a thread that could outlive the run: a thread abandoned inside torch or
OpenCV aborted the interpreter at exit (SIGABRT, "terminate called without an active exception").
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm  # plain text bar: Kaggle's saved log shows it, a widget would not

from .config import LEADS
from .digitized import Digitized, lead_rows
from .io.competition_files import CompetitionFolder
from .io.submission import validate_submission, write_submission
from .models.stage_loading import StageLoadError
from .predictor_spec import (PREDICTOR_CHOICES, PREDICTOR_ENV, FunctionPredictor, Predictor,  # noqa: F401
                             PredictorFactory, PredictorSpec, as_predictor, is_factory, zeros_predictor)
from .worker_pool import WorkerLoadError, WorkerPool, default_workers

logger = logging.getLogger(__name__)

# What the runner predicts with in this process: a Predictor (ecgdigit.pipeline.Pipeline is one), or a
# function image -> Digitized (as_predictor wraps it); predict_many is used when batch_size > 1.
PredictorLike = Predictor | Callable[[np.ndarray], Digitized]
Predictions = dict[str, dict[str, np.ndarray]]  # image id -> lead -> float32 rows

# The final write must fit in the time left: margin = factor * measured (write + validate) + floor.
WRITE_MARGIN_FACTOR = 2.0
WRITE_MARGIN_FLOOR_S = 1.0
PROGRESS_EVERY_S = 10.0  # the bar redraws at most this often (each redraw is a line in Kaggle's log)
# Periodic flushes never take more than about this share of the run.
MAX_FLUSH_SHARE = 0.1


@dataclass
class RunReport:
    """What a submission run did; `failures` lists (image id, reason) for every fallback image."""

    n_images: int
    n_predicted: int  # images whose predictor returned (including its own fallbacks)
    n_fallback: int  # images written as fallback: failed, skipped, or Digitized.is_fallback
    seconds_per_image: float  # mean over predicted images (nan when none)
    total_s: float
    failures: list[tuple[str, str]]
    submission: Path
    stopped_by_deadline: bool = False
    write_s: float = float("nan")  # measured full write + validate time of the first (fallback) file
    # what the user must see: stages left classical (a model not loaded), test.csv oddities
    warnings: list[str] = field(default_factory=list)
    test_csv_problems: list[str] = field(default_factory=list)
    workers: int = 1  # processes that predicted (1: in this process, or one worker)
    predict_wall_s: float = float("nan")  # from the predictor's start (workers included) to the last image

    @property
    def wall_seconds_per_image(self) -> float:
        """Throughput: the prediction phase's wall time per predicted image (all workers together)."""
        return self.predict_wall_s / self.n_predicted if self.n_predicted else math.nan


@dataclass
class RecordsResult:
    """In-memory predictions of predict_records(): shared with build_submission.py for scoring."""

    predictions: Predictions
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # image id -> prediction time
    pipeline_fallbacks: list[str] = field(default_factory=list)  # predicted, but Digitized.is_fallback
    stopped_by_deadline: bool = False


# ---------------------------------------------------------------- predictors
def default_predictor(weights_dir: str | Path | None = None, device: str | None = None) -> Predictor:
    """The predictor named by env ECGDIGIT_PREDICTOR (see predictor_spec), built in this process."""
    return PredictorSpec.from_env(weights_dir=None if weights_dir is None else str(weights_dir),
                                  device=device).load().predictor


# ---------------------------------------------------------------- rows of one image
def image_rows(digitized: Digitized, image_df: pd.DataFrame) -> dict[str, np.ndarray]:
    """test.csv's rows for one image (its lead rows) -> lead -> float32 values of that lead's window."""
    out: dict[str, np.ndarray] = {}
    for lead, fs, n in zip(image_df["lead"], image_df["fs"], image_df["number_of_rows"]):
        if str(lead) in LEADS:  # a lead the kit does not know (tolerant test.csv) keeps the fallback
            out[str(lead)] = lead_rows(digitized, str(lead), int(fs), int(n))
    return out


def _ordered_ids(test_df: pd.DataFrame) -> list[str]:
    return [str(i) for i in pd.unique(test_df["id"].astype(str))]


def predict_records(
    competition,
    predictor: PredictorLike,
    *,
    test_df: pd.DataFrame | None = None,
    stop_at: float | None = None,
    limit: int | None = None,
    on_record: Callable[[str], None] | None = None,
    progress: bool = True,
    into: RecordsResult | None = None,
    batch_size: int = 1,
) -> RecordsResult:
    """Predict every image of test_df (default: the competition's test.csv) in order.

    predictor: a Predictor, or a function image -> Digitized. batch_size > 1: up to that many images
    go to one predict_many call, each image's seconds being the batch's time / its size (a function
    still predicts one image at a time); otherwise one predict per image.

    stop_at: a time.monotonic() value; no image is started after it, nor when the seconds per image
    measured so far say it cannot finish before it. A running image is never abandoned (in this
    process it cannot be stopped safely: the hard cut is worker_pool's). Images not predicted (failed, skipped by the deadline or by `limit`) are absent from
    `predictions`; failures name each failed/skipped image and why. on_record(image_id) runs after
    each image (the runner flushes from it). into: a RecordsResult filled in place (default: new).
    """
    if test_df is None:
        test_df = competition.test()
    ids = _ordered_ids(test_df)
    groups = {str(k): g for k, g in test_df.groupby(test_df["id"].astype(str), sort=False)}
    result = into if into is not None else RecordsResult(predictions={})
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    predictor = as_predictor(predictor)
    if batch_size > 1 and isinstance(predictor, FunctionPredictor):
        logger.warning("batch_size %d: a plain function predicts one image at a time", batch_size)
    if batch_size > 1:
        many = predictor.predict_many
    else:
        many = _one_by_one(predictor.predict)
    _predict_batches(competition, many, ids, groups, result, batch_size=batch_size, stop_at=stop_at,
                     limit=limit, on_record=on_record, progress=progress)
    return result


def _one_by_one(predict: Callable[[np.ndarray], Digitized]) -> Callable[[list[np.ndarray]], list]:
    """A predict_many over a single-image predictor: each image's exception stays in its slot."""
    def many(images: list[np.ndarray]) -> list:
        out: list = []
        for image in images:
            try:
                out.append(predict(image))
            except Exception as exc:  # this image only
                out.append(exc)
        return out

    return many


def _predict_batches(competition, many, ids: list[str], groups: dict, result: RecordsResult, *,
                     batch_size: int, stop_at: float | None, limit: int | None,
                     on_record: Callable[[str], None] | None, progress: bool) -> None:
    """predict_records() with up to batch_size images per predict_many call; the same failures,
    fallbacks and deadline rules as one image at a time. Before each batch the deadline is checked,
    and the batch shrinks to the images the measured seconds per image say can finish in time
    (none: the run stops)."""
    end = len(ids) if limit is None else min(limit, len(ids))
    bar = tqdm(total=len(ids), desc="predict", unit="img", disable=not progress, mininterval=PROGRESS_EVERY_S)
    per_image_s: float | None = None  # measured on the batches so far
    k = 0
    while k < end:
        remaining = None if stop_at is None else stop_at - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        n = min(batch_size, end - k)
        if remaining is not None and per_image_s:
            n = min(n, int(remaining / per_image_s))
            if n < 1:
                break
        chunk, k = ids[k:k + n], k + n
        t0 = time.monotonic()
        batch_ids, images = [], []
        for image_id in chunk:
            try:
                images.append(competition.test_image(image_id))
                batch_ids.append(image_id)
            except Exception as exc:  # CompetitionFileError or any decode error: this image only
                logger.warning("image %s: unreadable, fallback kept: %s", image_id, exc)
                result.failures.append((image_id, f"unreadable image: {exc}"))
        bar.update(len(chunk) - len(batch_ids))
        if not batch_ids:
            continue
        try:
            outs = many(images)
            if len(outs) != len(images):
                raise ValueError(f"predict_many returned {len(outs)} results for {len(images)} images")
        except Exception as exc:  # the batch call itself failed: each of its images keeps the fallback
            outs = [exc] * len(images)
        dt = (time.monotonic() - t0) / len(images)
        per_image_s = dt
        for image_id, out in zip(batch_ids, outs):
            try:
                if isinstance(out, Exception):
                    raise out
                rows = image_rows(out, groups[image_id])
            except Exception as exc:  # a pipeline bug on one image must not cost the others
                logger.warning("image %s: predictor failed, fallback kept: %r", image_id, exc)
                result.failures.append((image_id, f"predictor error: {exc!r}"))
                continue
            result.predictions[image_id] = rows
            result.seconds[image_id] = dt
            if out.is_fallback:
                result.pipeline_fallbacks.append(image_id)
            logger.info("image %s: %.2f s%s", image_id, dt, " (fallback)" if out.is_fallback else "")
            if on_record is not None:
                on_record(image_id)
        bar.update(len(batch_ids))
        bar.set_postfix(s_per_img=f"{dt:.2f}", batch=len(batch_ids))
    bar.close()
    if k < end:
        result.stopped_by_deadline = True
        result.failures.extend((i, "skipped: deadline") for i in ids[k:end])
        logger.warning("deadline: %d of %d images keep the fallback", len(ids) - k, len(ids))
    if end < len(ids):
        result.failures.extend((i, "skipped: limit") for i in ids[end:])


# ---------------------------------------------------------------- writing
def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.final.tmp")


def _write_validated(test_df: pd.DataFrame, predictions: Mapping, path: Path) -> None:
    """Write to a temp file beside `path`, validate it, then replace `path` (never a bad file)."""
    tmp = _tmp_path(path)
    try:
        write_submission(test_df, predictions, tmp)
        validate_submission(tmp, test_df)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _resolve_competition(competition) -> CompetitionFolder:
    if isinstance(competition, CompetitionFolder):
        return competition
    return CompetitionFolder.resolve(competition)


def run_submission(
    competition=None,
    output_path: str | Path = "submission.csv",
    *,
    predictor: PredictorLike | PredictorFactory | None = None,
    deadline_s: float | None = None,
    limit: int | None = None,
    flush_every_s: float = 60.0,
    progress: bool = True,
    batch_size: int = 1,
    workers: int | None = None,
) -> RunReport:
    """Write a valid submission.csv at once, then improve it with predictions until the deadline.

    competition: a CompetitionFolder, a path, or None (CompetitionFolder.resolve(): env
    ECGDIGIT_COMPETITION_DIR, then Kaggle's mounts). predictor: a PredictorSpec (None: from env
    ECGDIGIT_PREDICTOR / ECGDIGIT_STRICT_WEIGHTS; or any picklable PredictorFactory), built AFTER the
    fallback file exists in each of `workers` processes (None: $ECGDIGIT_WORKERS, else the cores); or a
    Predictor (or a function image RGB -> Digitized) run in this process, batch_size images at a time.
    A predictor that cannot be built leaves every image with the fallback (error in `failures`),
    except a --strict-weights refusal, which raises models.stage_loading.StageLoadError.
    deadline_s: seconds from the call until the final file must be in place (None: no limit).
    limit: predict at most this many images (the rest keep the fallback).
    """
    t_start = time.monotonic()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    folder = _resolve_competition(competition)
    test_df, test_csv_problems = folder.test_tolerant()
    for problem in test_csv_problems:
        logger.warning("test.csv: %s", problem)
    ids = _ordered_ids(test_df)
    logger.info("competition %s: %d images, %d test.csv rows", getattr(folder, "root", folder),
                len(ids), len(test_df))

    # the fallback file, written atomically to its place (a valid file within seconds), then
    # validated; its (write + validate) time sizes the margin kept for the final write
    t0 = time.monotonic()
    write_submission(test_df, {}, output_path)
    logger.info("fallback submission written to %s in %.2f s", output_path, time.monotonic() - t0)
    validate_submission(output_path, test_df)
    write_s = time.monotonic() - t0
    margin_s = WRITE_MARGIN_FACTOR * write_s + WRITE_MARGIN_FLOOR_S
    logger.info("fallback submission valid; write + validate %.2f s, final-write margin %.1f s", write_s, margin_s)
    stop_at = None if deadline_s is None else t_start + deadline_s - margin_s

    result = RecordsResult(predictions={})
    flush = {"last": time.monotonic(), "every": flush_every_s}

    def on_record(_: str) -> None:
        # Periodic rewrite so that a run killed early still has the images done so far.
        now = time.monotonic()
        if now - flush["last"] < flush["every"]:
            return
        if stop_at is not None and stop_at - now < margin_s:
            return  # the final write comes soon; a flush now could eat its margin
        t = time.monotonic()
        try:
            write_submission(test_df, result.predictions, output_path)
        except Exception:  # the previous (valid) file stays; the final write tries again
            logger.exception("periodic flush failed; the previous file is kept")
        dt = time.monotonic() - t
        flush["last"] = time.monotonic()
        flush["every"] = max(flush_every_s, dt / MAX_FLUSH_SHARE)
        logger.info("flushed %d predicted images in %.2f s", len(result.predictions), dt)

    failures: list[tuple[str, str]] = []
    warnings: list[str] = []
    if predictor is None:
        predictor = PredictorSpec.from_env()
    t_predict = time.monotonic()
    if is_factory(predictor):
        n_workers = default_workers() if workers is None else int(workers)
        if batch_size > 1:
            logger.warning("batch_size %d: worker processes predict one image at a time", batch_size)
        try:
            if isinstance(predictor, PredictorSpec):
                predictor.check()
            warnings = _predict_in_workers(folder, predictor, test_df, result, n_workers=n_workers,
                                           stop_at=stop_at, limit=limit, on_record=on_record, progress=progress)
        except (ValueError, WorkerLoadError) as exc:
            if isinstance(exc, WorkerLoadError) and exc.strict:
                raise StageLoadError(str(exc)) from None  # the fallback file stays in place
            logger.error("predictor could not be loaded: every image keeps the fallback: %s", exc)
            failures.append(("*", f"predictor load failed: {exc}"))
            failures.extend((i, "predictor unavailable") for i in ids)
    else:
        n_workers = 1
        predict_records(folder, predictor, test_df=test_df, stop_at=stop_at, limit=limit,
                        on_record=on_record, progress=progress, into=result, batch_size=batch_size)
    predict_wall_s = time.monotonic() - t_predict
    failures.extend(result.failures)

    # the final file; should it fail validation (a bug), the all-fallback file is put back
    try:
        _write_validated(test_df, result.predictions, output_path)
    except Exception as exc:
        logger.exception("final submission invalid: writing the all-fallback file instead")
        write_submission(test_df, {}, output_path)
        failures.append(("*", f"final write failed, every image written as fallback: {exc!r}"))
        result.predictions.clear()
        result.pipeline_fallbacks.clear()
    total_s = time.monotonic() - t_start
    secs = list(result.seconds.values())
    report = RunReport(
        n_images=len(ids),
        n_predicted=len(result.predictions),
        n_fallback=len(ids) - len(result.predictions) + len(result.pipeline_fallbacks),
        seconds_per_image=float(np.mean(secs)) if secs else math.nan,
        total_s=total_s,
        failures=failures,
        submission=output_path,
        stopped_by_deadline=result.stopped_by_deadline,
        write_s=write_s,
        warnings=warnings,
        test_csv_problems=test_csv_problems,
        workers=n_workers,
        predict_wall_s=predict_wall_s,
    )
    for text in warnings:  # again at the end, where a reader of the log looks first
        logger.warning("%s", text)
    logger.info("submission %s: %d/%d images predicted, %d fallback, %.2f s/image (%.2f s wall per image, "
                "%d worker(s)), %.1f s total", output_path, report.n_predicted, report.n_images,
                report.n_fallback, report.seconds_per_image, report.wall_seconds_per_image, n_workers, total_s)
    return report


def _predict_in_workers(folder: CompetitionFolder, spec: PredictorFactory, test_df: pd.DataFrame,
                        result: RecordsResult, *, n_workers: int, stop_at: float | None, limit: int | None,
                        on_record: Callable[[str], None], progress: bool) -> list[str]:
    """predict_records() in worker processes; returns the workers' load warnings. The same failures,
    fallbacks and deadline labels; an image running when the deadline comes is cut off."""
    ids = _ordered_ids(test_df)
    end = len(ids) if limit is None else min(limit, len(ids))
    groups = {str(k): g for k, g in test_df.groupby(test_df["id"].astype(str), sort=False)}
    tasks = [(i, [(str(r.lead), int(r.fs), int(r.number_of_rows)) for r in groups[i].itertuples()])
             for i in ids[:end]]
    bar = tqdm(total=len(ids), desc="predict", unit="img", disable=not progress, mininterval=PROGRESS_EVERY_S)

    def on_result(image_id: str, rows, failure, seconds: float, is_fallback: bool) -> None:
        bar.update(1)
        if failure is not None:
            logger.warning("image %s: fallback kept: %s", image_id, failure)
            result.failures.append((image_id, failure))
            return
        result.predictions[image_id] = rows
        result.seconds[image_id] = seconds
        if is_fallback:
            result.pipeline_fallbacks.append(image_id)
        logger.info("image %s: %.2f s%s", image_id, seconds, " (fallback)" if is_fallback else "")
        bar.set_postfix(s_per_img=f"{seconds:.2f}")
        on_record(image_id)

    if not tasks:  # nothing to predict (limit 0): no worker to start
        bar.close()
        result.failures.extend((i, "skipped: limit") for i in ids[end:])
        return []
    pool = WorkerPool(max(1, min(n_workers, len(tasks))), spec, folder.root)
    try:
        outcome = pool.run(tasks, on_result, stop_at)
    finally:
        bar.close()
    cut = outcome.cut_by_deadline + outcome.not_started
    if cut:
        result.stopped_by_deadline = True
        done = {i for i, _ in result.failures} | set(result.predictions)
        order = {i: k for k, i in enumerate(ids)}
        result.failures.extend((i, "skipped: deadline") for i in sorted(cut, key=order.get) if i not in done)
        logger.warning("deadline: %d of %d images keep the fallback (%d cut off while predicting)",
                       len(cut), len(ids), len(outcome.cut_by_deadline))
    if end < len(ids):
        result.failures.extend((i, "skipped: limit") for i in ids[end:])
    return outcome.warnings
