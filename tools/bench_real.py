"""Accuracy and speed on REAL competition-format folders with truth (test.csv, test/, test_truth/).

    python tools/bench_real.py --input ../shared/realdev/renders_kaggle_look ../shared/realdev/real_scans
    python tools/bench_real.py --input ../shared/realdev/* --workers 2 --classical

Per folder: score (the competition's: 10 log10 of the mean linear SNR), median image dB, per image
type, the five worst images, where the error lies (ecgdigit.error_breakdown: the share of squared
error within 40 ms of a lead window's edge / on steep flanks / on the flat body, the median
least-squares gain truth/read, leads under 10 dB), seconds and peak-memory rise per image.
With --workers N the images are read in N processes (one torch thread each); seconds per image are
then each worker's own wall time per image, honest only if N <= the cores. Writes --out/bench_real.csv
(one row per image) and --out/bench_real.json (per folder, and the command line).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm


from bench_accuracy import PeakMemory, device_name, run_pipeline
from ecgdigit.config import PERFECT_SCORE, paths
from ecgdigit.error_breakdown import CLASSES, image_errors, summarize
from ecgdigit.evaluation import per_type_table
from ecgdigit.io.competition_files import CompetitionFolder
from ecgdigit.metric import score_records
from ecgdigit.pipeline import Pipeline
from ecgdigit.runner import image_rows

logger = logging.getLogger("bench_real")

_PIPELINE = None  # one per worker process, built by _init_worker
_MEM: PeakMemory | None = None


def _init_worker(classical: bool, weights: str | None, device: str | None, threads: int | None) -> None:
    global _PIPELINE, _MEM
    if threads:
        torch.set_num_threads(threads)
    _PIPELINE = Pipeline() if classical else Pipeline.load(weights, device, strict_weights=True)
    _MEM = PeakMemory(cuda=str(device or "").startswith("cuda"))


def _read_one(job: tuple[str, str, pd.DataFrame]) -> dict:
    """One image (its folder, id and test.csv rows): the pipeline's predictions for those rows,
    seconds and memory."""
    root, image_id, rows = job
    fs = int(rows["fs"].iloc[0])
    image = CompetitionFolder(Path(root)).test_image(image_id)
    _MEM.start()
    run = run_pipeline(_PIPELINE, image, fs)
    rss_mb, _ = _MEM.stop()
    return {"root": root, "id": image_id, "fs": fs, "preds": image_rows(run.digitized, rows),
            "s_total": run.total_s, "peak_rss_mb": rss_mb, "stage0": run.stage0, "stage1": run.stage1,
            "error": run.error, "height": image.shape[0], "width": image.shape[1]}


def folder_report(root: Path, results: list[dict]) -> tuple[pd.DataFrame, dict]:
    """Score one folder's results: per-image frame and the folder's summary."""
    folder = CompetitionFolder(root)
    test = folder.test()
    fs_of = test.groupby("id", sort=False)["fs"].first().to_dict()
    types = folder.test_image_types()
    ids = [r["id"] for r in results]
    truths = {i: (folder.test_truth(i), int(fs_of[i])) for i in ids}
    rep = score_records({r["id"]: r["preds"] for r in results}, truths, perfect_score=PERFECT_SCORE)
    all_leads = []
    rows = []
    for r, snr_db in zip(results, rep.per_image["snr_db"]):
        leads = image_errors(truths[r["id"]][0], r["preds"], r["fs"], r["id"])
        all_leads += leads
        b = summarize(leads)
        rows.append({"folder": root.name, "id": r["id"], "image_type": types.get(r["id"], "?"),
                     "snr_db": float(snr_db), "s_total": r["s_total"], "peak_rss_mb": r["peak_rss_mb"],
                     "stage0": r["stage0"], "stage1": r["stage1"], "error": r["error"],
                     **{f"share_{c}": b.share[c] for c in CLASSES}, "median_gain": b.median_gain,
                     "leads_under_10db": b.n_leads_under_10db})
    df = pd.DataFrame(rows)
    lin = rep.per_image["snr_linear"].to_numpy(np.float64)
    b = summarize(all_leads)
    per_image = df[["id", "image_type", "snr_db"]].assign(snr_linear=lin)
    per_type = {r.image_type: r.score_db for r in per_type_table(per_image).itertuples()}
    worst = df.nsmallest(5, "snr_db")[["id", "image_type", "snr_db"]].to_dict(orient="records")
    summary = {"folder": str(root), "n": len(df), "score_db": rep.score_db, "median_image_db": float(df["snr_db"].median()),
               "per_type_db": per_type, "worst": worst, "share": b.share, "median_gain": b.median_gain,
               "leads_under_10db": b.n_leads_under_10db, "n_leads": b.n_leads,
               "s_per_image": float(df["s_total"].mean()), "peak_rss_mb_max": float(df["peak_rss_mb"].max()),
               "failures": int((df["error"] != "").sum())}
    return df, summary


def format_summary(s: dict) -> str:
    share = " / ".join(f"{c} {100 * s['share'][c]:.0f}%" for c in CLASSES)
    types = ", ".join(f"{t} {v:.2f}" for t, v in s["per_type_db"].items())
    worst = ", ".join(f"{w['id']} ({w['image_type']}) {w['snr_db']:.1f}" for w in s["worst"])
    return "\n".join([
        f"{Path(s['folder']).name}: {s['n']} images, score {s['score_db']:.2f} dB, median image "
        f"{s['median_image_db']:.2f} dB, {s['failures']} failures",
        f"  per image type dB: {types}",
        f"  worst five: {worst}",
        f"  error share (edge / steep / flat): {share}; median gain truth/read {s['median_gain']:.3f}; "
        f"leads under 10 dB: {s['leads_under_10db']}/{s['n_leads']}",
        f"  {s['s_per_image']:.2f} s/image, peak RSS rise {s['peak_rss_mb_max']:.0f} MB (max)",
    ])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, nargs="+", required=True, help="competition-format folders with test_truth/")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1: honest seconds per image)")
    p.add_argument("--classical", action="store_true", help="Pipeline(): classical stages, no weights")
    p.add_argument("--weights", type=Path, default=None, help="weights folder (default: weights/)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--limit", type=int, default=None, help="first N images of each folder")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/bench_real/)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be >= 1")
    for root in args.input:
        folder = CompetitionFolder(root)
        if not folder.test_csv_path.exists():
            p.error(f"{root}: no test.csv (not a competition-format folder)")
        if not folder.has_truth():
            p.error(f"{root}: no test_truth/ folder: cannot score")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = "python tools/bench_real.py " + shlex.join(sys.argv[1:] if argv is None else [str(a) for a in argv])
    print(f"$ {command.strip()}", flush=True)
    jobs = []
    for root in args.input:
        folder = CompetitionFolder(root)
        test = folder.test()  # read once per folder; each job carries its own rows
        ids = folder.test_ids()
        jobs += [(str(root), i, test[test["id"] == i]) for i in (ids[: args.limit] if args.limit else ids)]
    init = (args.classical, str(args.weights) if args.weights else None, args.device,
            1 if args.workers > 1 else None)
    t0 = time.perf_counter()
    if args.workers == 1:
        _init_worker(*init)
        results = [_read_one(j) for j in tqdm(jobs, desc="images", unit="img", disable=args.quiet)]
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=init) as pool:
            results = list(tqdm(pool.map(_read_one, jobs), total=len(jobs), desc="images", unit="img",
                                disable=args.quiet))
    wall = time.perf_counter() - t0
    frames, summaries = [], []
    for root in args.input:
        df, s = folder_report(root, [r for r in results if r["root"] == str(root)])
        frames.append(df)
        summaries.append(s)
        print(format_summary(s))
    print(f"{len(results)} images in {wall:.1f} s wall with {args.workers} worker(s); device "
          f"{device_name(args.device or 'cpu')}", flush=True)
    out = args.out or paths().outputs / "bench_real"
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_csv(out / "bench_real.csv", index=False)
    (out / "bench_real.json").write_text(json.dumps({"command": command.strip(), "folders": summaries,
                                                     "workers": args.workers, "classical": args.classical,
                                                     "wall_s": wall, "date": time.strftime("%Y-%m-%d %H:%M:%S")},
                                                    indent=2, default=float))
    print(f"wrote {out / 'bench_real.csv'} and {out / 'bench_real.json'}")
    return summaries


if __name__ == "__main__":
    main()
