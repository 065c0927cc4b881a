"""Command line of the trainer.

    python -m ecgdigit.training.cli --stage 0|1|2|all --variant tiny|cpu|gpu --out DIR
        [--steps N --batch-size B --workers W --device D --weights-dir weights/ --no-resume]
    torchrun --nproc_per_node=G -m ecgdigit.training.cli ...   (DDP: same flags)

Each stage trains in DIR/stage{n}/ (checkpoint.pt, log.jsonl); the final fp16 weights go to
--weights-dir (default DIR/weights) with their manifest entry.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from ..models.stage_models import STAGES
from .configs import TRAIN_VARIANTS, stage_config, with_overrides
from .data import CompetitionSource
from .engine import dist_info, train
from .tasks import get_task

logger = logging.getLogger(__name__)


STAGE_CHOICES: dict[str, tuple[int, ...]] = {**{str(s): (s,) for s in STAGES}, "all": STAGES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ecgdigit.training.cli", description="Train the stage models.")
    ap.add_argument("--stage", required=True, choices=[*STAGE_CHOICES])
    ap.add_argument("--variant", required=True, choices=list(TRAIN_VARIANTS))
    ap.add_argument("--out", required=True, help="run folder: one sub-folder per stage")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    ap.add_argument("--weights-dir", default=None, help="where the final weights + manifest.json go")
    ap.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--real-dir", default=None,
                    help="competition folder (train.csv + train/, or a scored test folder: test.csv + test/ + "
                         "test_truth/ as ../shared/realdev's): mix its real images into stage 2 (0001 exact labels, "
                         "others only where the classical geometry agrees with the series)")
    ap.add_argument("--real-fraction", type=float, default=0.2)
    ap.add_argument("--real-types", default="0001", help="comma-separated image types of the real source")
    args = ap.parse_args(argv)
    for name in ("steps", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if args.workers is not None and args.workers < 0:
        ap.error(f"--workers must be >= 0, got {args.workers}")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; returns {stage: TrainResult}."""
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    command = "python -m ecgdigit.training.cli " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    stages = STAGE_CHOICES[args.stage]
    out = Path(args.out)
    weights_dir = Path(args.weights_dir) if args.weights_dir else out / "weights"
    results = {}
    for s in stages:
        cfg = with_overrides(stage_config(s, args.variant), args.steps, args.batch_size, args.workers)
        extra = None
        if args.real_dir and get_task(s).accepts_real_images:
            extra = CompetitionSource(args.real_dir, tuple(t.strip() for t in args.real_types.split(",")))
        res = train(cfg, out / f"stage{s}", device=args.device, resume=not args.no_resume, weights_dir=weights_dir,
                    command=command, progress=not args.no_progress, extra_source=extra,
                    extra_fraction=args.real_fraction if extra is not None else 0.0)
        if dist_info().is_main:
            logger.info("stage %d: %d steps, final loss %.4f, %.3f s/step, hold-out %s, weights %s", s, res.steps,
                        res.final_loss, res.seconds_per_step, res.holdout, res.weights)
        results[s] = res
    return results


if __name__ == "__main__":
    main()
