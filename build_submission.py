#!/usr/bin/env python
"""Run the whole submission locally on a competition-format folder, and score it where truth is present.

    python build_submission.py                      # the embedded synthetic sample (made on first run)
    python build_submission.py --input /data/comp   # any folder laid out as Kaggle mounts the competition

It calls the same runner as the Kaggle notebook (ecgdigit.runner.run_submission), so both write the
same file for the same input.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path


from ecgdigit.config import paths
from ecgdigit.debug_plot import save_overlay
from ecgdigit.digitized import Digitized
from ecgdigit.evaluation import evaluate_submission, format_evaluation
from ecgdigit.io.competition_files import CompetitionFileError, CompetitionFolder, CompetitionNotFoundError
from ecgdigit.models.stage_loading import StageLoadError
from ecgdigit.predictor_spec import PredictorSpec
from ecgdigit.runner import run_submission
from ecgdigit.synth.embedded_sample import ensure_embedded_sample

logger = logging.getLogger("build_submission")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=None,
                   help="competition folder (test.csv, test/); default: the embedded synthetic sample")
    p.add_argument("--output", type=Path, default=None, help="submission path (default: outputs/submission.csv)")
    p.add_argument("--weights", type=Path, default=None, help="weights folder with manifest.json (default: weights/)")
    p.add_argument("--classical", action="store_true", help="ignore weights: every stage uses its classical version")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--time-budget", type=float, default=None, help="seconds for the whole run (fallbacks after)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes predicting images in parallel (default: $ECGDIGIT_WORKERS, else the cores "
                        "this process may use); the submission is byte-for-byte the same for any number")
    p.add_argument("--strict-weights", action="store_true",
                   help="stop (exit 3) when a stage's model cannot be loaded, instead of running that stage's "
                        "classical version with a warning")
    p.add_argument("--limit", type=int, default=None, help="predict at most this many images (rest: fallback)")
    p.add_argument("--debug-dir", type=Path, default=None,
                   help="save a rectified page with the read signal drawn over it, per image (first --debug-n)")
    p.add_argument("--debug-n", type=int, default=9)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def predictor_spec(args):
    """What each worker process builds (after the fallback submission is written)."""
    return PredictorSpec(kind="classical" if args.classical else "pipeline",
                         weights_dir=None if args.weights is None else str(args.weights),
                         device=args.device, strict_weights=args.strict_weights)


def save_debug_pictures(folder, pipeline, out_dir: Path, n: int) -> None:
    types = folder.test_image_types()
    for image_id in folder.test_ids()[:n]:
        try:
            res = pipeline.run(folder.test_image(image_id))
        except Exception as exc:  # the submission already holds this image's fallback
            logger.warning("debug picture for %s skipped: %s", image_id, exc)
            continue
        truth = None
        if folder.has_truth():
            series = folder.test_truth(image_id).fillna(0.0).to_numpy()
            fs = int(folder.test().query("id == @image_id")["fs"].iloc[0])
            truth = Digitized(series, fs)
        path = save_overlay(out_dir / f"{image_id}-{types.get(image_id, 'test')}.png", res.stage2.rectified,
                            res.stage2.scale, res.digitized, truth,
                            title=f"{image_id} type {types.get(image_id, '?')}: stage0 {res.stage0.method}, "
                                  f"stage1 {res.stage1.method}; blue = read, green = truth")
        logger.info("debug picture: %s", path)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = args.input if args.input is not None else ensure_embedded_sample(progress=not args.quiet)
    folder = CompetitionFolder(root)
    output = args.output or paths().outputs / "submission.csv"
    spec = predictor_spec(args)
    t0 = time.perf_counter()
    report = run_submission(folder, output, predictor=spec, deadline_s=args.time_budget, limit=args.limit,
                            progress=not args.quiet, workers=args.workers)
    wall = time.perf_counter() - t0
    for text in report.warnings:  # first: a stage running classical changes what the score means
        print(f"WARNING: {text}")
    print(f"submission: {report.submission} ({report.n_images} images, {report.n_predicted} predicted, "
          f"{report.n_fallback} fallback{', stopped by the time budget' if report.stopped_by_deadline else ''})")
    print(f"seconds per image: {report.seconds_per_image:.2f} per worker, {report.wall_seconds_per_image:.2f} "
          f"wall with {report.workers} worker(s) (run {wall:.1f} s, device "
          f"{args.device or os.environ.get('CUDA_VISIBLE_DEVICES') and 'cuda' or 'auto'})")
    for image_id, reason in report.failures:
        print(f"  fallback {image_id}: {reason}")
    if report.test_csv_problems:  # the file is written (repaired as the log says); locally, say it loudly
        for problem in report.test_csv_problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"error: {folder.test_csv_path} has {len(report.test_csv_problems)} kind(s) of problem; "
              f"{output} was written with them repaired, not scored", file=sys.stderr)
        return 2
    if folder.has_truth():
        print(format_evaluation(evaluate_submission(folder, output)))
    else:
        print("no truth in this folder: not scored")
    if args.debug_dir is not None:
        save_debug_pictures(folder, spec.load().predictor, args.debug_dir, args.debug_n)
    return 0


def cli(argv=None) -> int:
    """main() with the competition folder's own errors as one clear line instead of a traceback
    (exit 2), and a --strict-weights refusal as one line too (exit 3)."""
    try:
        return main(argv)
    except (CompetitionFileError, CompetitionNotFoundError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StageLoadError as exc:
        print(f"error: {exc} (the fallback submission is in place)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(cli())
