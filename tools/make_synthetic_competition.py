"""Write a synthetic competition-format folder (train/, test/, test.csv, truth) from the generator.

    python tools/make_synthetic_competition.py --out data/synth_small --n-train 20 --n-test 18
    python tools/make_synthetic_competition.py --out data/synth --n-train 200 --n-test 90 --workers 2

The folder reads like the Kaggle one (ecgdigit.io.competition_files.CompetitionFolder), plus
test_truth/ (signals, geometry, image types) so that build_submission.py --input can score it.
Deterministic by --seed: the same options write the same files.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


from ecgdigit.config import IMAGE_TYPES, parse_image_types
from ecgdigit.synth.competition_writer import WriteSummary, WriterOptions, write_competition


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder to write (created; existing files are overwritten)")
    p.add_argument("--n-train", type=int, default=40, help="training records (each drawn in every --train-types)")
    p.add_argument("--n-test", type=int, default=10, help="test images (the --test-types in turn)")
    p.add_argument("--train-types", type=parse_image_types, default=tuple(IMAGE_TYPES), help="'all' or e.g. 0001,0003")
    p.add_argument("--test-types", type=parse_image_types, default=tuple(IMAGE_TYPES), help="'all' or e.g. 0005,0006")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=int, default=None, help="cap photo sizes (px, long side); default: competition sizes")
    p.add_argument("--workers", type=int, default=1, help=f"processes (this machine has {os.cpu_count()} cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.n_train < 0 or args.n_test < 0 or args.workers < 1:
        p.error("--n-train/--n-test must be >= 0 and --workers >= 1")
    return args


def main(argv=None) -> WriteSummary:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    opts = WriterOptions(n_train=args.n_train, n_test=args.n_test, train_types=args.train_types,
                         test_types=args.test_types, seed=args.seed, max_side=args.max_side, workers=args.workers)
    summary = write_competition(args.out, opts, progress=not args.quiet)
    print(f"wrote {summary.n_images} images ({args.n_train} train records x {len(args.train_types)} types, "
          f"{args.n_test} test images) to {summary.root}")
    print(f"{summary.seconds:.1f} s, {summary.images_per_s:.2f} images/s with {args.workers} worker(s)")
    return summary


if __name__ == "__main__":
    main()
    sys.exit(0)
