"""THE accuracy and speed benchmark of the pipeline, on a synthetic hold-out with truth.

    python tools/bench_accuracy.py                         # shipped weights where present, 12 per type
    python tools/bench_accuracy.py --classical --per-type 4
    python tools/bench_accuracy.py --holdout-dir data/my_holdout --weights weights/ --device cuda

Hold-out: --per-type images of every --types, written by ecgdigit.synth.competition_writer with
seed --seed (default 777000; keep every training/data seed below 777000, and the training
hold-out's 10_000_019.. away from it, so the benchmark is never trained on). It is built once under
--out/holdout/<options>/ and reused; --holdout-dir points at any competition-format folder with
test_truth/ (e.g. one from tools/make_synthetic_competition.py) and is used as it is.

Every image is read twice, single-process so that seconds per image are honest:
  (a) the pipeline itself;
  (b) the same pipeline given the ORACLE page->image geometry (stages 0 and 1 replaced by the
      truth), so the score lost to geometry is (b) - (a) and what is left of (b) is stage 2's.
Both are scored with the competition metric (ecgdigit.metric.score_records on the runner's image_rows). Per type:
n, score dB (10 log10 of the mean linear SNR: the competition's aggregation), the mean of per-image
dB, the oracle's score dB, seconds per image, and the stage-0/1 methods used. Timing per stage
(PipelineResult.seconds) and peak memory per image: on CPU the peak-RSS rise during the call
(the kernel's high-water mark VmHWM, reset before each call via /proc/self/clear_refs; where that
is not allowed, the rise of getrusage's ru_maxrss, which only sees new process-wide peaks); on
CUDA also torch.cuda.max_memory_allocated. Writes --out/bench_accuracy.csv (one row per image)
and --out/bench_accuracy.json (the summary and the command line).
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import platform
import resource
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm


from ecgdigit.config import (
    IMAGE_TYPES,
    PERFECT_SCORE,
    PERFECT_SCORE_EARLY,
    SYNTH_VERSION,
    parse_image_types,
    paths,
)
from ecgdigit.digitized import Digitized
from ecgdigit.io.competition_files import CompetitionFolder
from ecgdigit.metric import score_records
from ecgdigit.models.inference import pick_device
from ecgdigit.pipeline import Pipeline
from ecgdigit.runner import image_rows
from ecgdigit.synth.competition_writer import WriterOptions, load_geometry_truth, write_competition

logger = logging.getLogger("bench_accuracy")

HOLDOUT_SEED = 777000  # benchmark seeds start here; training and data seeds stay below
HOLDOUT_MARKER = "BENCH_HOLDOUT.json"
STAGES = ("stage0", "stage1", "stage2")


# ---------------------------------------------------------------- hold-out
def holdout_options(per_type: int, types: tuple[str, ...], seed: int, max_side: int | None,
                    workers: int) -> WriterOptions:
    # test images cycle through the types, so per_type * len(types) gives per_type of each
    return WriterOptions(n_train=0, n_test=per_type * len(types), train_types=types, test_types=types,
                         seed=seed, max_side=max_side, workers=workers)


def _marker_text(opts: WriterOptions) -> str:
    d = asdict(opts)
    d.pop("workers")  # the files do not depend on it
    d["synth_version"] = SYNTH_VERSION
    return json.dumps(d, sort_keys=True)


def ensure_holdout(root: Path, opts: WriterOptions, progress: bool = True) -> tuple[Path, bool]:
    """(folder, built now?): reuses a folder made with the same options, else (re)writes it."""
    marker = root / HOLDOUT_MARKER
    if marker.exists() and marker.read_text() == _marker_text(opts):
        return root, False
    logger.info("writing the hold-out (%d images, seed %d) to %s", opts.n_test, opts.seed, root)
    write_competition(root, opts, progress=progress)
    marker.write_text(_marker_text(opts))
    return root, True


def default_holdout_dir(out: Path, opts: WriterOptions) -> Path:
    types = "all" if opts.test_types == tuple(IMAGE_TYPES) else "-".join(opts.test_types)
    return out / "holdout" / f"seed{opts.seed}_n{opts.n_test}_{types}_side{opts.max_side or 'full'}"


# ---------------------------------------------------------------- measuring
class PeakMemory:
    """Peak RSS rise (MB) during a call; CUDA peak allocation too when a CUDA device is used."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.clear_refs = self._can_clear_refs()
        self.method = ("peak RSS rise: VmHWM reset via /proc/self/clear_refs" if self.clear_refs
                       else "peak RSS rise: getrusage ru_maxrss (only new process-wide peaks count)")

    @staticmethod
    def _can_clear_refs() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return _status_kb("VmHWM") is not None
        except OSError:
            return False

    def start(self) -> None:
        gc.collect()
        if self.clear_refs:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # high-water mark := current RSS
            self.base_kb = _status_kb("VmRSS")
        else:
            self.base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def stop(self) -> tuple[float, float]:
        """(peak RSS rise MB, CUDA peak allocated MB or nan)."""
        peak = _status_kb("VmHWM") if self.clear_refs else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gpu = math.nan
        if self.cuda:
            torch.cuda.synchronize()
            gpu = torch.cuda.max_memory_allocated() / 2**20
        return max(0.0, (peak - self.base_kb) / 1024.0), gpu


def _status_kb(key: str) -> float | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    return None


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"CPU {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


@dataclass
class Run:
    digitized: Digitized
    seconds: dict
    total_s: float
    stage0: str
    stage1: str
    orientation: int
    n_crossings: int
    residual_px: float
    error: str
    layout: str = ""  # stage 1's layout detection: 'competition' (pulses found), 'signal span', '' (none)
    result: object = field(default=None, repr=False)  # the PipelineResult (None on failure)


def run_pipeline(pipeline, image: np.ndarray, fs: int, oracle=None) -> Run:
    t0 = time.perf_counter()
    try:
        res = pipeline.run(image, oracle_page_to_image=oracle)
    except Exception as exc:  # the submission would hold the fallback for this image: score that
        dt = time.perf_counter() - t0
        logger.warning("pipeline failed (%s): scored as the zero fallback", exc)
        return Run(Digitized.fallback(repr(exc), fs), {}, dt, "error", "error", -1, 0, math.nan,
                   f"{type(exc).__name__}: {exc}")
    dt = time.perf_counter() - t0
    found = getattr(res.stage1, "layout_found", None)
    return Run(res.digitized, dict(res.seconds), dt, res.stage0.method, res.stage1.method, int(res.stage0.orientation),
               int(res.stage1.n_crossings), float(res.stage1.residual_px), "", "" if found is None else found.kind, res)


# ---------------------------------------------------------------- tables
def _db(lin: np.ndarray) -> float:
    return float(10 * np.log10(max(float(np.mean(lin)), 1e-12))) if len(lin) else math.nan


def _counts(values) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(Counter(values).items()))


def per_type_summary(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    groups = [(t, df[df["image_type"] == t]) for t in sorted(df["image_type"].unique())] + [("all", df)]
    for t, g in groups:
        rows.append({"image_type": t, "name": IMAGE_TYPES.get(t, "all types" if t == "all" else "?"), "n": len(g),
                     "score_db": _db(g["snr_linear"].to_numpy()),
                     "mean_image_db": float(g["snr_db"].mean()),
                     "oracle_score_db": _db(g["oracle_snr_linear"].dropna().to_numpy()),
                     "seconds_mean": float(g["s_total"].mean()),
                     "orientation_ok": int(g["orientation_ok"].sum()),
                     "failures": int((g["error"] != "").sum()),
                     "stage0_methods": _counts(g["stage0_method"]), "stage1_methods": _counts(g["stage1_method"])})
    return pd.DataFrame(rows)


def format_type_table(t: pd.DataFrame) -> str:
    lines = [f"{'type':6} {'name':18} {'n':>3} {'score dB':>8} {'mean img dB':>11} {'oracle dB':>9} "
             f"{'s/img':>6} {'orient ok':>9} {'fail':>4}  stage-0 methods | stage-1 methods"]
    for r in t.itertuples():
        if r.image_type == "all":
            lines.append("-" * len(lines[0]))
        lines.append(f"{r.image_type:6} {r.name:18} {r.n:>3} {r.score_db:>8.2f} {r.mean_image_db:>11.2f} "
                     f"{r.oracle_score_db:>9.2f} {r.seconds_mean:>6.2f} {f'{r.orientation_ok}/{r.n}':>9} "
                     f"{r.failures:>4}  {r.stage0_methods} | {r.stage1_methods}")
    return "\n".join(lines)


def timing_summary(df: pd.DataFrame) -> dict:
    ok = df[df["error"] == ""]
    out = {}
    for col in ["s_total", *(f"s_{s}" for s in STAGES), "oracle_s_total", "peak_rss_mb", "peak_gpu_mb"]:
        v = ok[col].dropna().to_numpy(np.float64)
        out[col] = ({"mean": float(v.mean()), "p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90)),
                     "max": float(v.max())} if len(v) else None)
    return out


def format_timing(tim: dict, n_ok: int) -> str:
    names = {"s_total": "pipeline total s", "s_stage0": "  stage 0 s", "s_stage1": "  stage 1 s",
             "s_stage2": "  stage 2 s", "oracle_s_total": "oracle run s", "peak_rss_mb": "peak RSS rise MB",
             "peak_gpu_mb": "CUDA peak alloc MB"}
    lines = [f"{'per image (' + str(n_ok) + ' ok)':22} {'mean':>8} {'p50':>8} {'p90':>8} {'max':>8}"]
    for k, label in names.items():
        s = tim.get(k)
        if s is not None:
            lines.append(f"{label:22} {s['mean']:>8.2f} {s['p50']:>8.2f} {s['p90']:>8.2f} {s['max']:>8.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-type", type=int, default=12, help="hold-out images per image type (default 12)")
    p.add_argument("--types", type=parse_image_types, default=tuple(IMAGE_TYPES), help="'all' or e.g. 0001,0005")
    p.add_argument("--seed", type=int, default=HOLDOUT_SEED, help=f"hold-out seed (default {HOLDOUT_SEED})")
    p.add_argument("--max-side", type=int, default=None, help="cap photo sizes (px); default: competition sizes")
    p.add_argument("--holdout-dir", type=Path, default=None,
                   help="use this competition-format folder with test_truth/ as it is (built there if empty)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for generating the hold-out")
    p.add_argument("--classical", action="store_true", help="Pipeline(): classical stages, no weights")
    p.add_argument("--weights", type=Path, default=None, help="weights folder (default: config paths().weights)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle-geometry run (half the time)")
    p.add_argument("--limit", type=int, default=None, help="read only the first N hold-out images")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/bench/)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.per_type < 1 or args.workers < 1:
        p.error("--per-type and --workers must be >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = "python tools/bench_accuracy.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    print(f"$ {command.strip()}", flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or paths().outputs / "bench"
    out.mkdir(parents=True, exist_ok=True)

    # 1. the hold-out (multi-process generation; nothing else runs meanwhile)
    t0 = time.perf_counter()
    opts = holdout_options(args.per_type, args.types, args.seed, args.max_side, args.workers)
    if args.holdout_dir is not None and (args.holdout_dir / "test.csv").exists():
        root, built = args.holdout_dir, False
    else:
        root, built = ensure_holdout(args.holdout_dir or default_holdout_dir(out, opts), opts, not args.quiet)
    folder = CompetitionFolder(root)
    if not folder.has_truth():
        raise SystemExit(f"{root}: no test_truth/ folder: cannot score (make it with tools/make_synthetic_competition.py)")
    test = folder.test()
    ids = folder.test_ids()[: args.limit] if args.limit else folder.test_ids()
    types = folder.test_image_types()
    print(f"hold-out: {root} ({len(ids)} images, {'built' if built else 'reused'} in "
          f"{time.perf_counter() - t0:.1f} s{'' if args.holdout_dir else f', seed {args.seed}'})", flush=True)

    # 2. the pipeline, single process
    if args.classical:
        pipeline, device = Pipeline(), "cpu"
    else:
        device = str(pick_device(args.device))
        # strict: a benchmark of the weights must not silently measure a stage's classical fallback
        pipeline = Pipeline.load(args.weights, device, strict_weights=True)
    models = pipeline.models.names() or ["none (classical stages)"]
    dev_name = device_name(device)
    print(f"pipeline: models {', '.join(models)}; device {device} = {dev_name}; torch threads "
          f"{torch.get_num_threads()}, cv2 threads {cv2.getNumThreads()}", flush=True)
    mem = PeakMemory(cuda=device.startswith("cuda"))

    rows = []
    preds: dict[str, dict] = {}
    oracle_preds: dict[str, dict] = {}
    for image_id in tqdm(ids, desc="bench images", unit="img", disable=args.quiet):
        trows = test[test["id"] == image_id]
        fs = int(trows["fs"].iloc[0])
        image = folder.test_image(image_id)
        geom_path = folder.truth_dir / f"{image_id}.truth.npz"
        oracle_map, true_orientation = (load_geometry_truth(geom_path)[:2] if geom_path.exists() else (None, -1))

        mem.start()
        run = run_pipeline(pipeline, image, fs)
        rss_mb, gpu_mb = mem.stop()
        preds[image_id] = image_rows(run.digitized, trows)
        row = {"id": image_id, "image_type": types.get(image_id, "unknown"), "fs": fs,
               "height": image.shape[0], "width": image.shape[1],
               "stage0_method": run.stage0, "stage1_method": run.stage1,
               "orientation_true": true_orientation, "orientation_pred": run.orientation,
               "orientation_ok": run.orientation == true_orientation,
               "n_crossings": run.n_crossings, "residual_px": run.residual_px,
               "s_total": run.total_s, **{f"s_{s}": run.seconds.get(s, math.nan) for s in STAGES},
               "peak_rss_mb": rss_mb, "peak_gpu_mb": gpu_mb, "error": run.error,
               "oracle_s_total": math.nan, "oracle_error": ""}
        if oracle_map is not None and not args.no_oracle:
            orun = run_pipeline(pipeline, image, fs, oracle=oracle_map)
            oracle_preds[image_id] = image_rows(orun.digitized, trows)
            row.update(oracle_s_total=orun.total_s, oracle_error=orun.error)
        rows.append(row)

    # 3. scores (the competition's metric, per image; both caps for the overall line)
    truths = {i: (folder.test_truth(i), int(test.loc[test["id"] == i, "fs"].iloc[0])) for i in ids}
    rep = score_records(preds, truths, perfect_score=PERFECT_SCORE)
    rep_early = score_records(preds, truths, perfect_score=PERFECT_SCORE_EARLY)
    df = pd.DataFrame(rows)
    df.insert(2, "snr_db", rep.per_image["snr_db"].to_numpy())
    df.insert(3, "snr_linear", rep.per_image["snr_linear"].to_numpy())
    df.insert(4, "oracle_snr_db", math.nan)
    df.insert(5, "oracle_snr_linear", math.nan)
    if oracle_preds:
        o_ids = [i for i in ids if i in oracle_preds]
        orep = score_records(oracle_preds, {i: truths[i] for i in o_ids}, perfect_score=PERFECT_SCORE)
        sel = df["id"].isin(o_ids)
        df.loc[sel, "oracle_snr_db"] = orep.per_image["snr_db"].to_numpy()
        df.loc[sel, "oracle_snr_linear"] = orep.per_image["snr_linear"].to_numpy()

    per_type = per_type_summary(df)
    tim = timing_summary(df)
    n_ok = int((df["error"] == "").sum())
    print()
    print(f"score: {rep.score_db:.2f} dB (cap 1e6), {rep_early.score_db:.2f} dB (cap 384); oracle geometry "
          f"{per_type.iloc[-1]['oracle_score_db']:.2f} dB; {len(df)} images, {len(df) - n_ok} pipeline failures")
    print(format_type_table(per_type))
    print()
    print(format_timing(tim, n_ok))
    print(f"memory: {mem.method}" + ("; CUDA: torch.cuda.max_memory_allocated" if mem.cuda else ""))
    print(f"device: {device} = {dev_name}; torch threads {torch.get_num_threads()}; timings single-process, "
          "wall clock (noisy when other jobs share the machine)")

    csv_path, json_path = out / "bench_accuracy.csv", out / "bench_accuracy.json"
    df.to_csv(csv_path, index=False)
    summary = {"command": command.strip(), "holdout": str(root), "holdout_seed": None if args.holdout_dir else args.seed,
               "n_images": len(df), "n_failures": len(df) - n_ok, "score_db": rep.score_db,
               "score_db_early_cap": rep_early.score_db, "oracle_score_db": float(per_type.iloc[-1]["oracle_score_db"]),
               "per_type": per_type.to_dict(orient="records"), "timing": tim, "memory_method": mem.method,
               "device": device, "device_name": dev_name, "torch_threads": torch.get_num_threads(),
               "models": models, "classical": bool(args.classical), "max_side": args.max_side,
               "python": platform.python_version(), "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    json_path.write_text(json.dumps(summary, indent=2, default=float))
    print(f"wrote {csv_path} and {json_path}")
    return summary


if __name__ == "__main__":
    main()
    sys.exit(0)
