"""The time-limited submission run: a valid fallback file first, then real predictions as they finish.

Order of events (the competition kills the notebook at its time limit, and a notebook without a
valid submission.csv scores nothing):
1. write an all-fallback submission.csv (zeros) and validate it: from here on a valid file exists;
2. predict the test images in test.csv order, keeping each image's rows in memory;
3. rewrite the file atomically every `flush_every_s` seconds (less often when a write is slow);
4. when the deadline minus a safety margin (measured from the first write) comes near, stop:
   the remaining images keep the fallback; write the final file, validate it, then replace.

A missing/unreadable image or a predictor exception costs that image only (fallback + warning).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm  # plain text bar: Kaggle's saved log shows it, a widget would not

from .digitized import Digitized, lead_rows
from .io.competition_files import CompetitionFolder
from .io.submission import validate_submission, write_submission

logger = logging.getLogger(__name__)

Predictor = Callable[[np.ndarray], Digitized]
# What the runner accepts: a Predictor, or an object with predict(image) and optionally
# predict_many(images) -> [Digitized | Exception] (ecgdigit.pipeline.Pipeline), used when batch_size > 1.
PredictorLike = object
Predictions = dict[str, dict[str, np.ndarray]]  # image id -> lead -> float32 rows

# Env var read by default_predictor(): "pipeline" (default), "zeros" (Digitized.fallback, no weights) or
# "zeros:<seconds>" (the same, taking that long per image: exercises deadlines without a model).
PREDICTOR_ENV = "ECGDIGIT_PREDICTOR"
PREDICTOR_CHOICES = ("pipeline", "zeros", "zeros:<seconds per image>")
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


@dataclass
class RecordsResult:
    """In-memory predictions of predict_records(): shared with build_submission.py for scoring."""

    predictions: Predictions
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # image id -> prediction time
    pipeline_fallbacks: list[str] = field(default_factory=list)  # predicted, but Digitized.is_fallback
    stopped_by_deadline: bool = False


# ---------------------------------------------------------------- predictors
def zeros_predictor(image_rgb: np.ndarray) -> Digitized:
    """The documented no-weights predictor: every lead zero (what a fallback record holds)."""
    return Digitized.fallback("predictor=zeros")


def default_predictor(weights_dir: str | Path | None = None, device: str | None = None) -> Predictor:
    """The predictor named by env ECGDIGIT_PREDICTOR: "pipeline" (Pipeline.load().predict), "zeros",
    or "zeros:<seconds>" (zeros after sleeping that long per image)."""
    choice = os.environ.get(PREDICTOR_ENV, "pipeline").strip().lower() or "pipeline"
    if choice == "zeros":
        return zeros_predictor
    if choice.startswith("zeros:"):
        try:
            delay = float(choice.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"{PREDICTOR_ENV}={choice!r}: expected zeros:<seconds per image>") from None

        def slow_zeros(image_rgb: np.ndarray) -> Digitized:
            time.sleep(delay)
            return zeros_predictor(image_rgb)

        return slow_zeros
    if choice != "pipeline":
        raise ValueError(f"{PREDICTOR_ENV}={choice!r}: expected one of {PREDICTOR_CHOICES}")
    from .pipeline import Pipeline  # imported late: torch and weights are only needed here

    return Pipeline.load(weights_dir=weights_dir, device=device).predict


# ---------------------------------------------------------------- rows of one image
def image_rows(digitized: Digitized, image_df: pd.DataFrame) -> dict[str, np.ndarray]:
    """test.csv's rows for one image (its lead rows) -> lead -> float32 values of that lead's window."""
    out: dict[str, np.ndarray] = {}
    for lead, fs, n in zip(image_df["lead"], image_df["fs"], image_df["number_of_rows"]):
        out[str(lead)] = lead_rows(digitized, str(lead), int(fs), int(n))
    return out


def _ordered_ids(test_df: pd.DataFrame) -> list[str]:
    return [str(i) for i in pd.unique(test_df["id"].astype(str))]


def _call_with_timeout(fn: Callable[[], Digitized], timeout_s: float | None) -> Digitized:
    """Run fn in a daemon thread; raise TimeoutError if it is still running after timeout_s.

    A daemon thread so that an abandoned call (the deadline came during one image) cannot keep the
    process alive after the final write.
    """
    if timeout_s is None:
        return fn()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="ecgdigit-predict", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if worker.is_alive():
        raise TimeoutError(f"still running after {timeout_s:.1f} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _single_predictor(predictor: PredictorLike) -> Predictor:
    return predictor if callable(predictor) else predictor.predict  # type: ignore[attr-defined]


def _batch_predictor(predictor: PredictorLike) -> Callable[[list[np.ndarray]], list] | None:
    """predictor.predict_many, also for a bound Pipeline.predict (its owner's predict_many); else None."""
    many = getattr(predictor, "predict_many", None)
    if many is None and getattr(predictor, "__name__", "") == "predict":
        many = getattr(getattr(predictor, "__self__", None), "predict_many", None)
    return many if callable(many) else None


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

    predictor: image -> Digitized, or an object with predict (and predict_many). batch_size > 1 with
    a predict_many (see _batch_predictor): up to that many images are predicted together, each
    image's seconds being the batch's time / its size; otherwise one image at a time.

    stop_at: a time.monotonic() value; no image is started after it and a running one is abandoned
    there. Images not predicted (failed, skipped by the deadline or by `limit`) are absent from
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
    many = _batch_predictor(predictor) if batch_size > 1 else None
    if batch_size > 1 and many is None:
        logger.warning("batch_size %d: the predictor has no predict_many, one image at a time", batch_size)
    if many is None:
        many, batch_size = _one_by_one(_single_predictor(predictor)), 1
    _predict_batches(competition, many, ids, groups, result, batch_size=batch_size, stop_at=stop_at,
                     limit=limit, on_record=on_record, progress=progress)
    return result


def _one_by_one(predict: Predictor) -> Callable[[list[np.ndarray]], list]:
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
    and the batch shrinks to the images the measured seconds per image say can finish in time."""
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
            n = max(1, min(n, int(remaining / per_image_s)))  # one image still tries, as batch_size=1 does
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
            remaining = None if stop_at is None else stop_at - time.monotonic()
            outs = _call_with_timeout(lambda images=images: many(images), remaining)
            if len(outs) != len(images):
                raise ValueError(f"predict_many returned {len(outs)} results for {len(images)} images")
        except TimeoutError:
            k -= len(chunk) - chunk.index(batch_ids[0])  # the whole batch is lost
            break
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
    predictor: PredictorLike | None = None,
    deadline_s: float | None = None,
    limit: int | None = None,
    flush_every_s: float = 60.0,
    progress: bool = True,
    batch_size: int = 1,
) -> RunReport:
    """Write a valid submission.csv at once, then improve it with predictions until the deadline.

    competition: a CompetitionFolder, a path, or None (CompetitionFolder.resolve(): env
    ECGDIGIT_COMPETITION_DIR, then Kaggle's mounts). predictor: image RGB -> Digitized; None ->
    default_predictor() (env ECGDIGIT_PREDICTOR: "pipeline" or "zeros"), loaded AFTER the fallback
    file exists; if loading fails every image keeps the fallback and the error is in `failures`.
    deadline_s: seconds from the call until the final file must be in place (None: no limit).
    limit: predict at most this many images (the rest keep the fallback).
    batch_size: images predicted together where the predictor has predict_many (see predict_records).
    """
    t_start = time.monotonic()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    folder = _resolve_competition(competition)
    test_df = folder.test()
    ids = _ordered_ids(test_df)
    logger.info("competition %s: %d images, %d test.csv rows", getattr(folder, "root", folder),
                len(ids), len(test_df))

    # 1. the fallback file, written straight to its place (a valid file within seconds), then
    #    validated; its (write + validate) time sizes the margin kept for the final write
    t0 = time.monotonic()
    write_submission(test_df, {}, output_path)
    logger.info("fallback submission written to %s in %.2f s", output_path, time.monotonic() - t0)
    validate_submission(output_path, test_df)
    write_s = time.monotonic() - t0
    margin_s = WRITE_MARGIN_FACTOR * write_s + WRITE_MARGIN_FLOOR_S
    logger.info("fallback submission valid; write + validate %.2f s, final-write margin %.1f s", write_s, margin_s)
    stop_at = None if deadline_s is None else t_start + deadline_s - margin_s

    failures: list[tuple[str, str]] = []
    result = RecordsResult(predictions={})
    if predictor is None:
        try:
            predictor = default_predictor()
        except Exception as exc:
            logger.exception("predictor could not be loaded: every image keeps the fallback")
            failures.append(("*", f"predictor load failed: {exc!r}"))

    if predictor is not None:
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

        # filled in place, so that on_record's flush sees the predictions as they come
        predict_records(folder, predictor, test_df=test_df, stop_at=stop_at, limit=limit,
                        on_record=on_record, progress=progress, into=result, batch_size=batch_size)
        failures.extend(result.failures)
    else:
        failures.extend((i, "predictor unavailable") for i in ids)

    # 4. the final file; should it fail validation (a bug), the all-fallback file is put back
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
    )
    logger.info("submission %s: %d/%d images predicted, %d fallback, %.2f s/image, %.1f s total",
                output_path, report.n_predicted, report.n_images, report.n_fallback,
                report.seconds_per_image, total_s)
    return report
