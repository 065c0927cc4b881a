"""Are the kit's synthetic pages as hard as real ones? Real page and its synthetic twin, side by side.

    python tools/bench_fidelity.py                       # renders_kaggle_look and real_scans
    python tools/bench_fidelity.py --limit 4 --save-dir outputs/fidelity
    python tools/bench_fidelity.py --signal-stats        # the realdev signal figures synth/realism.py uses

For every real image of a realdev folder (../shared/realdev, see its README), the kit's own generator
draws the SAME truth signals (test_truth/{id}.csv) in the folder's layout and image type:
  renders_kaggle_look   0001 clean page, calibration pulse (ECG-image-kit's competition look)
  real_scans            0004 black-and-white scan at the real scans' size, with the pulse where the real
                        page has one (stage 1's layout detection on the real page: 2 of the 4 do)
The pipeline reads both pages; each is scored against the same truth with the competition metric.
A 4-page folder's figure moves by +-2 dB from one synthetic draw to the next, so real_scans draws 3
twins per page (seeds id, id + 7919, id + 2 * 7919; `--twins`) and scores them together; the first
twins alone (seeded by the id, the figure before twins were counted) are printed too.
Per folder: the real score, the synthetic score and the gap (synthetic - real: positive = the
synthetic page is easier), then simple image statistics of both (on the page scale, 2200 px wide):
paper and ink grey, major/minor grid darkness, trace line width, noise, edge sharpness; and, on
the page stage 1 rectified, how dark the grid's solid stretches are beside the trace (print_stats:
trace core darkness, the major lines' p90 darkness, their ratio, the solid share of the lines'
length and the share of that in long runs). That ratio and shares are what made the real scans
harder than the SYNTH_VERSION 6 twins (issue 10).
The last line is `fidelity gap: <max |gap| over folders> dB`.

renders_no_pulse is left out by default: 30 of its 58 pages print every column from 0 s while its
truth gives consecutive windows, so a synthetic twin drawn from that truth is not the same page;
`--folders renders_no_pulse` reads its 28 pages with consecutive columns (sources hr_gt / lr_gt).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bench_accuracy import run_pipeline
from ecgdigit.config import LEADS, PAGE, PERFECT_SCORE, PaperLayout
from ecgdigit.io.competition_files import CompetitionFolder
from ecgdigit.metric import score_records
from ecgdigit.runner import image_rows
from ecgdigit.stages.stage2_read import rectify_for_reading
from ecgdigit.synth.generate import make_image
from ecgdigit.synth.real_signals import load_truth_record
from ecgdigit.synth.render import NO_PULSE, draw_style, matplotlib_look, render_page

logger = logging.getLogger("bench_fidelity")

REALDEV = Path(__file__).resolve().parents[1].parent / "shared" / "realdev"


@dataclass(frozen=True)
class FolderKind:
    """How a folder's pages are laid out: its image type and whether rows start with the pulse.

    Both are ECG-image-kit (matplotlib) pages: the grid snapped and drawn in axis order, strokes half
    a pixel up-left (render.RenderStyle); the rest (trace grey, header) is drawn as for training.
    """

    image_type: str
    # rows start with the calibration pulse; None: as the real page shows (stage 1's layout detection
    # on the real page: pulses where the competition's layout puts them, or not)
    pulse: bool | None
    # keep only pages whose sources.csv source contains one of these (None: all)
    sources: tuple[str, ...] | None = None
    # synthetic twins drawn per real page (seeds id, id + 7919, ...), scored together: one draw of
    # a 4-page folder moves its figure by +-2 dB (realdev's scans: one twin set read 11.5 to 17.4 dB)
    twins: int = 1


KINDS: dict[str, FolderKind] = {
    "renders_kaggle_look": FolderKind("0001", pulse=True),
    "real_scans": FolderKind("0004", pulse=None, twins=3),  # its README says no pulse; 2 of its 4 pages show one
    # optional: only the pages with consecutive columns (the source's hr_gt / lr_gt renders); its
    # records100 / records500 pages print every column from 0 s, which its truth does not describe
    "renders_no_pulse": FolderKind("0001", pulse=False, sources=("/hr_gt/", "/lr_gt/")),
}
DEFAULT_FOLDERS = ("renders_kaggle_look", "real_scans")


def folder_ids(folder: CompetitionFolder, kind: FolderKind) -> list[str]:
    ids = folder.test_ids()
    if kind.sources is None:
        return ids
    src = pd.read_csv(folder.root / "sources.csv", dtype={"id": str})
    keep = {str(i) for i, s in zip(src["id"], src["source"]) if any(k in str(s) for k in kind.sources)}
    return [i for i in ids if i in keep]


# ---------------------------------------------------------------- image statistics
STAT_NAMES = ("paper", "ink", "grid_major", "grid_minor", "line_w_px", "noise", "sharpness")


def image_stats(rgb: np.ndarray) -> dict[str, float]:
    """Simple appearance figures of a page image, on the 2200 px page scale.

    paper: grey level of the paper (90th percentile); ink: the darkest 0.2 %; grid_major / grid_minor:
    how much darker than paper the column medians (80-row strips) of the signal area are at their darkest 1.5 % /
    10 % (a major line every 5 mm covers ~3.5 % of the columns, minor lines ~14 %); line_w_px: the
    mean vertical run of ink (pixels darker than a third of the way from ink to paper, runs of
    1-10 px: flat stretches of the trace); noise: std of grey minus its 3x3 median on paper;
    sharpness: 99th percentile of the Sobel gradient over (paper - ink) (1 = a step over one pixel).
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    f = PAGE.width / grey.shape[1]
    if abs(f - 1) > 0.01:
        grey = cv2.resize(grey, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
    g = grey.astype(np.float32)
    h, w = g.shape
    paper = float(np.percentile(g, 90))
    ink = float(np.percentile(g, 0.2))
    area = g[int(0.35 * h):int(0.95 * h), int(0.05 * w):int(0.95 * w)]
    # column medians over 80-row strips, so a scan turned by a degree still keeps a line in one column
    strips = [np.median(area[i:i + 80], axis=0) for i in range(0, area.shape[0] - 79, 80)]
    grid_major = paper - float(np.mean([np.percentile(c, 1.5) for c in strips]))
    grid_minor = paper - float(np.mean([np.percentile(c, 10) for c in strips]))
    dark = area < ink + (paper - ink) / 3.0
    runs = []
    d = np.diff(np.pad(dark, ((1, 1), (0, 0))).astype(np.int8), axis=0)
    for j in range(0, dark.shape[1], 3):
        s, e = np.flatnonzero(d[:, j] == 1), np.flatnonzero(d[:, j] == -1)
        r = e - s
        runs.append(r[(r >= 1) & (r <= 10)])
    runs = np.concatenate(runs) if runs else np.zeros(0)
    med3 = cv2.medianBlur(grey, 3).astype(np.float32)
    on_paper = med3 > paper - 0.1 * (paper - ink)
    noise = float(np.std((g - med3)[on_paper])) if on_paper.any() else float("nan")
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    sharp = float(np.percentile(np.hypot(gx, gy), 99.9)) / max(paper - ink, 1.0)
    return {"paper": paper, "ink": ink, "grid_major": grid_major, "grid_minor": grid_minor,
            "line_w_px": float(np.mean(runs)) if runs.size else float("nan"), "noise": noise, "sharpness": sharp}


# ---------------------------------------------------------------- the grid's solid stretches beside the trace
PRINT_STAT_NAMES = ("trace_dark", "grid_p90", "grid/trace", "solid", "long_solid")
SOLID_OF_TRACE = 0.65  # a grid pixel darker than this share of the trace's core darkness prints "solid"
LONG_RUN_PX = 20  # a solid run this long (page px, 2.5 mm) looks like a piece of trace to the reader


def print_stats(page_grey: np.ndarray, layout: PaperLayout = PAGE) -> dict[str, float]:
    """How dark a printed grid's major lines are next to the trace, on a rectified page (page scale).

    What made realdev's real scans harder to read than the SYNTH_VERSION 6 twins (issue 10): their
    major lines print in weak and solid stretches, and the solid ones are as dark as the trace.
    trace_dark: the trace's core darkness below paper (per column the darkest pixel of each short
    row's band, median over columns off the major lines); grid_p90: the 90th percentile of the major
    lines' darkness along their length (the darkest of 5 px across, away from the trace);
    grid/trace: their ratio; solid: the share of the lines' length darker than SOLID_OF_TRACE of
    the trace; long_solid: the share of that in runs of LONG_RUN_PX or more.
    """
    g = page_grey.astype(np.float32)
    h, w = g.shape
    x0, x1 = int(layout.signal_x0) + 10, int(layout.signal_x1) - 10
    paper = float(np.percentile(g[int(layout.baselines_y[0] - 2 * layout.px_per_mv):h - 60, x0:x1], 90))
    dark = paper - g
    step = layout.grid_major_px
    xs = [x for x in np.arange(0.0, w, step) if x0 < x < x1]
    off = np.ones(w, bool)
    for x in xs:
        off[max(0, int(round(x)) - 3):int(round(x)) + 4] = False
    cores = []
    for base in layout.baselines_y[:-1]:  # the short rows: the rhythm strip runs into the page's text
        band = dark[int(base - 1.5 * layout.px_per_mv):int(base + 1.0 * layout.px_per_mv), x0:x1]
        cores.append(band.max(axis=0)[off[x0:x1]])
    trace = float(np.median(np.concatenate(cores)))
    ys = [y for y in np.arange(h - 1.0, 0.0, -step) if layout.baselines_y[0] - 2 * layout.px_per_mv < y < h - 60]
    along, runs = [], []
    for horizontal, positions in ((True, ys), (False, xs)):
        img = dark if horizontal else dark.T
        lo, hi = (x0, x1) if horizontal else (int(ys[-1]), int(ys[0]))
        for c in positions:
            ci = int(round(c))
            # the line's own row (the stage 1 map may leave it a pixel or two off)
            k = ci - 3 + int(np.argmax([np.median(img[j, lo:hi]) for j in range(ci - 3, ci + 4)]))
            prof = img[k - 2:k + 3, lo:hi].max(axis=0)
            crossed = (img[k - 10:k + 11, lo:hi] > 0.5 * trace).sum(axis=0) > 8  # the trace crosses here
            prof = prof[~crossed]
            along.append(prof)
            solid = np.diff(np.r_[0, (prof > SOLID_OF_TRACE * trace).astype(np.int8), 0])
            runs.append(np.flatnonzero(solid == -1) - np.flatnonzero(solid == 1))
    along, runs = np.concatenate(along), np.concatenate(runs)
    p90 = float(np.percentile(along, 90))
    return {"trace_dark": trace, "grid_p90": p90, "grid/trace": p90 / max(trace, 1.0),
            "solid": float(np.mean(along > SOLID_OF_TRACE * trace)),
            "long_solid": float(runs[runs >= LONG_RUN_PX].sum() / max(runs.sum(), 1))}


def page_grey(run) -> np.ndarray | None:
    """The rectified page (page scale, grey) of a bench_accuracy.Run, None where the pipeline failed."""
    if run.result is None:
        return None
    rect = rectify_for_reading(run.result.stage0.upright, run.result.stage1.page_to_image, 1.0)
    return cv2.cvtColor(rect, cv2.COLOR_RGB2GRAY)


def _print_stats(run) -> dict[str, float]:
    grey = page_grey(run)
    return dict.fromkeys(PRINT_STAT_NAMES, float("nan")) if grey is None else print_stats(grey)


# ---------------------------------------------------------------- the synthetic twin
TWIN_SEED_STEP = 7919
def synthetic_twin(folder: CompetitionFolder, image_id: str, fs: int, kind: FolderKind,
                   size: tuple[int, int], pulse: bool | None = None, draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image, signals) of the kit's page for the real image's truth, seeded by the id and `draw` alone.

    pulse: whether the rows start with the calibration pulse (default: the folder kind's);
    draw: which of the page's twins (0: the one seeded by the id, as before twins were counted)."""
    pulse = kind.pulse if pulse is None else pulse
    if pulse is None:
        raise ValueError(f"{folder.root.name}: the real page's pulse must be given (its folder kind leaves it open)")
    rec = load_truth_record(folder.test_truth_path(image_id), image_id, fs)
    rng = np.random.default_rng((int(image_id) + TWIN_SEED_STEP * draw) % (2 ** 32))
    # ECG-image-kit plots each lead on its own, in consecutive windows
    style = matplotlib_look(replace(draw_style(rng), show_calibration=pulse, connect_columns=False,
                                    simultaneous_columns=False))
    page = render_page(rec, rng, PAGE if pulse else NO_PULSE, style)
    kw = {"size": size} if kind.image_type != "0001" else {}
    im = make_image(rec, kind.image_type, rng, page=page, orientation=0, **kw)
    return im.image, rec.signals


def signal_stats(roots: list[Path]) -> str:
    """The realdev truth figures synth/realism.py is built on (see its docstring)."""
    from scipy.ndimage import median_filter
    from scipy.signal import welch

    from ecgdigit.synth.realism import HF_BANDS

    psd, start, wander, spread = [], [], [], []
    for root in roots:
        src = pd.read_csv(root / "sources.csv", dtype={"id": str}) if (root / "sources.csv").exists() else None
        for p in sorted((root / "test_truth").glob("*.csv")):
            if p.stem == "image_types":
                continue
            df = pd.read_csv(p)
            ii = df["II"].to_numpy(np.float64)
            name = "" if src is None else str(src.loc[src["id"] == p.stem, "source"].iloc[0])
            if "hr" in name.rsplit("/", 1)[-1] or "records500" in name:  # 500 Hz sources only
                f, pw = welch(ii, fs=500, nperseg=512)
                psd.append([pw[(f >= lo) & (f < hi)].mean() for lo, hi, _ in HF_BANDS])
            start.append(float(np.nanmax(np.abs(df.iloc[0].to_numpy() - np.nanmedian(df.iloc[50:500].to_numpy(), 0)))))
            wander.append(float(np.ptp(median_filter(ii, 301))))
            amp = [np.ptp(df[c].dropna().to_numpy()) for c in LEADS]
            spread.append(float(np.std(np.log(np.maximum(amp, 1e-3)))))
    psd = np.asarray(psd)
    lines = [f"signal figures of {len(start)} truth records ({len(psd)} from 500 Hz sources for the spectrum)"]
    for k, (lo, hi, _) in enumerate(HF_BANDS):
        q = np.percentile(psd[:, k], [25, 50, 75]) if len(psd) else [np.nan] * 3
        lines.append(f"  lead II PSD {lo:>3.0f}-{hi:<3.0f} Hz: median {q[1]:.2e} mV^2/Hz (quartiles {q[0]:.2e}, {q[2]:.2e})")
    lines.append(f"  start transient over 0.5 mV: {sum(s > 0.5 for s in start)} of {len(start)} records")
    lines.append("  baseline peak-to-peak (0.6 s running median of II) 10/50/90 %: "
                 + ", ".join(f"{v:.2f}" for v in np.percentile(wander, [10, 50, 90])) + " mV")
    lines.append(f"  lead amplitude spread (std of log peak-to-peak over 12 leads), median record: {np.median(spread):.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realdev", type=Path, default=REALDEV, help=f"realdev folder (default {REALDEV})")
    p.add_argument("--folders", nargs="+", default=list(DEFAULT_FOLDERS), choices=list(KINDS),
                   help=f"default {' '.join(DEFAULT_FOLDERS)}; renders_no_pulse: its consecutive-column pages only")
    p.add_argument("--limit", type=int, default=None, help="first N images of each folder")
    p.add_argument("--twins", type=int, default=None,
                   help="synthetic twins per real page (default: the folder's, 3 for real_scans, else 1)")
    p.add_argument("--classical", action="store_true", help="Pipeline(): classical stages, no weights")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--save-dir", type=Path, default=None, help="write each synthetic twin here as PNG")
    p.add_argument("--signal-stats", action="store_true", help="only print realdev's signal figures and exit")
    return p.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = "python tools/bench_fidelity.py " + shlex.join(sys.argv[1:] if argv is None else [str(a) for a in argv])
    print(f"$ {command.strip()}", flush=True)
    if args.signal_stats:
        print(signal_stats([args.realdev / d for d in ("renders_kaggle_look", "real_scans", "renders_no_pulse")
                            if (args.realdev / d).is_dir()]))
        return float("nan")
    from ecgdigit.pipeline import Pipeline

    pipeline = Pipeline() if args.classical else Pipeline.load(args.weights, "cpu", strict_weights=True)
    gaps = []
    t0 = time.perf_counter()
    for name in args.folders:
        kind = KINDS[name]
        folder = CompetitionFolder(args.realdev / name)
        test = folder.test()
        ids = folder_ids(folder, kind)
        ids = ids[: args.limit] if args.limit else ids
        n_twins = args.twins or kind.twins
        real_preds, syn_preds, truths, syn_truths, real_st, syn_st = {}, {}, {}, {}, [], []
        n_pulse = 0
        for image_id in ids:
            rows = test[test["id"] == image_id]
            fs = int(rows["fs"].iloc[0])
            real = folder.test_image(image_id)
            real_run = run_pipeline(pipeline, real, fs)
            pulse = kind.pulse if kind.pulse is not None else real_run.layout == "competition"
            n_pulse += pulse
            truths[image_id] = (folder.test_truth(image_id), fs)
            real_preds[image_id] = image_rows(real_run.digitized, rows)
            real_st.append({**image_stats(real), **_print_stats(real_run)})
            for draw in range(n_twins):
                key = image_id if draw == 0 else f"{image_id}#{draw}"
                syn, _ = synthetic_twin(folder, image_id, fs, kind, real.shape[:2], pulse, draw)
                if args.save_dir is not None:
                    args.save_dir.mkdir(parents=True, exist_ok=True)
                    stem = f"{name}_{image_id}" + (f"_{draw}" if draw else "")
                    cv2.imwrite(str(args.save_dir / f"{stem}.png"), cv2.cvtColor(syn, cv2.COLOR_RGB2BGR))
                syn_run = run_pipeline(pipeline, syn, fs)
                syn_preds[key] = image_rows(syn_run.digitized, rows)
                syn_truths[key] = truths[image_id]
                syn_st.append({**image_stats(syn), **_print_stats(syn_run)})
        r = score_records(real_preds, truths, perfect_score=PERFECT_SCORE)
        s = score_records(syn_preds, syn_truths, perfect_score=PERFECT_SCORE)
        gap = s.score_db - r.score_db
        gaps.append(abs(gap))
        twins = f", {n_twins} synthetic twins per page" if n_twins > 1 else ""
        print(f"{name}: {len(ids)} images ({n_pulse} with the pulse{twins}), type {kind.image_type}: real {r.score_db:.2f} dB, "
              f"synthetic {s.score_db:.2f} dB, gap {gap:+.2f} dB (median image real {np.median(r.per_image['snr_db']):.2f}, "
              f"synthetic {np.median(s.per_image['snr_db']):.2f})")
        if n_twins > 1:
            first = s.per_image[~s.per_image["id"].astype(str).str.contains("#")]
            print(f"  first twins only (seeded by the id, as with one twin): synthetic "
                  f"{10 * np.log10(max(first['snr_linear'].mean(), 1e-12)):.2f} dB")
        syn_lin: dict[str, list[float]] = {}
        for k, v in zip(s.per_image["id"].astype(str), s.per_image["snr_linear"]):
            syn_lin.setdefault(k.split("#")[0], []).append(float(v))
        pairs = sorted((a, 10 * np.log10(max(np.mean(syn_lin[str(i)]), 1e-12)))
                       for i, a in zip(r.per_image["id"].astype(str), r.per_image["snr_db"]))
        print("  per image real/synthetic dB (by real" + (", synthetic over its twins" if n_twins > 1 else "") + "): "
              + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in pairs))
        med = lambda st, k: float(np.nanmedian([x[k] for x in st]))  # noqa: E731
        for names, note in ((STAT_NAMES, "(medians over the folder)"),
                            (PRINT_STAT_NAMES, "(the grid's solid stretches beside the trace, on the rectified page)")):
            print(f"  {'image':10}" + "".join(f" {k:>10}" for k in names) + f"   {note}")
            for label, st in (("real", real_st), ("synthetic", syn_st)):
                print(f"  {label:10}" + "".join(f" {med(st, k):>10.2f}" for k in names))
        sys.stdout.flush()
    print(f"{time.perf_counter() - t0:.0f} s")
    worst = max(gaps) if gaps else float("nan")
    print(f"fidelity gap: {worst:.2f} dB")
    return worst


if __name__ == "__main__":
    main()
