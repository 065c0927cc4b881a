#!/usr/bin/env python
"""Seconds and peak memory of checking a hidden-test-sized submission (no images needed).

    python tools/bench_check.py --images 1000     # ~22 M rows, the size of Kaggle's hidden test set

Synthesizes a test.csv (sampling rates drawn from the competition's: 250..1025 Hz), writes its
all-fallback submission with the kit's writer (timed), then checks it with validate_submission in a
FRESH process, so that the peak RSS printed is the check's own (imports included), not the writer's.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


import ecgdigit
from ecgdigit import config

FS_CHOICES = (250, 256, 500, 512, 1000, 1025)  # the rates the competition's data holds


def synthetic_test_csv(n_images: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        fs = int(rng.choice(FS_CHOICES))
        rows += [(str(100000 + 7919 * i), lead, fs, config.number_of_rows(lead, fs)) for lead in config.LEADS]
    return pd.DataFrame(rows, columns=["id", "lead", "fs", "number_of_rows"])


def check_only(folder: Path) -> None:
    """Child mode: validate folder/submission.csv against folder/test.csv; print seconds and peak RSS."""
    from ecgdigit.io.competition_files import read_test_csv
    from ecgdigit.io.submission import validate_submission

    test = read_test_csv(folder / "test.csv")
    t0 = time.perf_counter()
    validate_submission(folder / "submission.csv", test)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"CHECK seconds={seconds:.2f} peak_rss_mb={peak_mb:.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="keep the files here (default: a temp folder)")
    ap.add_argument("--check-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.check_only is not None:
        check_only(args.check_only)
        return 0
    from ecgdigit.io.submission import write_submission

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        test = synthetic_test_csv(args.images, args.seed)
        test.to_csv(folder / "test.csv", index=False)
        t0 = time.perf_counter()
        write_submission(test, {}, folder / "submission.csv")
        write_s = time.perf_counter() - t0
        n_rows = int(test["number_of_rows"].sum())
        size_gb = (folder / "submission.csv").stat().st_size / 1e9
        # the child imports the package this process imported (an uninstalled checkout run with PYTHONPATH=lib
        # or by the tests: the same one), whatever the environment has installed
        paths = [str(Path(ecgdigit.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
        r = subprocess.run([sys.executable, __file__, "--check-only", str(folder)], capture_output=True, text=True,
                           env=env)
        if r.returncode != 0:
            print(r.stdout + r.stderr, file=sys.stderr)
            return 1
        check = dict(kv.split("=") for kv in r.stdout.split("CHECK", 1)[1].split())
        print(f"{args.images} images, {n_rows:,} rows, {size_gb:.2f} GB: write {write_s:.1f} s; "
              f"check {float(check['seconds']):.1f} s, peak RSS {float(check['peak_rss_mb']) / 1024:.2f} GB "
              f"(fresh process, imports included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
