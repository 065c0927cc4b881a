"""Benchmark of the foundation: submission writer throughput and metric scoring time.

Prints numbers; it is not a test.
    python tools/bench_foundation.py --images 100 --score-images 1000
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


from ecgdigit import config, metric
from ecgdigit.io import submission


def synthetic_test(n_images: int, fs_choices: list[int], rng) -> pd.DataFrame:
    rows = []
    for i in range(n_images):
        fs = int(rng.choice(fs_choices))
        rows += [(str(100000 + 7919 * i), lead, fs, config.number_of_rows(lead, fs)) for lead in config.LEADS]
    return pd.DataFrame(rows, columns=["id", "lead", "fs", "number_of_rows"])


def bench_writer(args, rng) -> None:
    test = synthetic_test(args.images, args.fs, rng)
    preds: dict = {}
    for r in test.itertuples():
        preds.setdefault(r.id, {})[r.lead] = rng.normal(0, 0.4, r.number_of_rows).astype(np.float32)
    n_rows = int(test["number_of_rows"].sum())
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "submission.csv"
        times = [submission.write_submission(test, preds, path).seconds for _ in range(args.repeats)]
        size = path.stat().st_size
        t0 = time.perf_counter()
        sub = submission.read_submission(path)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        submission.validate_submission(sub, test)
        t_val = time.perf_counter() - t0
    best = min(times)
    rate = n_rows / best
    print(f"writer: {args.images} images, {n_rows:,} rows, {size / n_rows:.1f} bytes/row")
    print(f"  write: best {best:.3f} s of {args.repeats} -> {rate / 1e6:.2f} M rows/s "
          f"(all runs: {', '.join(f'{t:.3f}' for t in times)})")
    print(f"  extrapolated to {args.target_rows / 1e6:.0f} M rows: {args.target_rows / rate:.1f} s, "
          f"{args.target_rows * size / n_rows / 1e9:.2f} GB")
    print(f"  read_submission: {t_read:.2f} s ({n_rows / t_read / 1e6:.2f} M rows/s); "
          f"validate_submission: {t_val:.2f} s ({n_rows / t_val / 1e6:.2f} M rows/s)")


def bench_metric(args, rng) -> None:
    fs = args.score_fs
    n = int(10 * fs)
    base = np.sin(np.arange(n)[:, None] / fs * 2 * np.pi * 1.2 + np.arange(12)) * 0.5
    truths, preds = {}, {}
    for i in range(args.score_images):
        full = base + rng.normal(0, 0.02, (n, 12))
        series = pd.DataFrame(full, columns=list(config.LEADS))
        for k, lead in enumerate(config.LEADS):
            a, b = config.lead_window(lead, fs)
            series.iloc[np.r_[0:a, b:n], k] = np.nan
        image_id = str(i)
        truths[image_id] = (series, fs)
        w = metric.truth_windows(series, fs, image_id)
        preds[image_id] = {lead: np.roll(v, int(rng.integers(-10, 11))) + rng.normal(0, 0.05, v.size)
                           for lead, v in w.items()}
    t0 = time.perf_counter()
    rep = metric.score_records(preds, truths)
    t_rec = time.perf_counter() - t0
    print(f"metric: score_records on {args.score_images} images x 12 leads at {fs} Hz: {t_rec:.2f} s "
          f"({rep.score_db:.2f} dB)")
    m = min(args.host_images, args.score_images)
    if m:
        ids = list(truths)[:m]
        truth_long = pd.concat([metric.long_truth_from_series(i, *truths[i]) for i in ids], ignore_index=True)
        sub = pd.DataFrame({
            "id": truth_long["id"],
            "value": np.concatenate([preds[i][lead] for i in ids for lead in config.LEADS])})
        t0 = time.perf_counter()
        rep_h = metric.score(sub, truth_long)
        t_h = time.perf_counter() - t0
        rep_r = metric.score_records({i: preds[i] for i in ids}, {i: truths[i] for i in ids})
        print(f"  score() on host-format frames, {m} images ({len(sub):,} rows): {t_h:.2f} s "
              f"-> ~{t_h * args.score_images / m:.0f} s per {args.score_images} images; "
              f"|score() - score_records()| = {abs(rep_h.score_db - rep_r.score_db):.2e} dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=100, help="images in the synthetic test.csv")
    ap.add_argument("--fs", type=int, nargs="+", default=[500, 512, 1000], help="sampling rates to draw from")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target-rows", type=float, default=120e6, help="rows to extrapolate the writer to")
    ap.add_argument("--score-images", type=int, default=1000)
    ap.add_argument("--score-fs", type=int, default=500)
    ap.add_argument("--host-images", type=int, default=50, help="images for the long-format score() timing")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    bench_writer(args, rng)
    bench_metric(args, rng)


if __name__ == "__main__":
    main()
