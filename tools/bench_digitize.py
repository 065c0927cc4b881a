"""The digitize command on pages of every size a hospital folder may hold, and on pages that are not
ECGs: no crash, every page gets a record or one line saying why, and the seconds each took.

    python tools/bench_digitize.py                                   # a realdev page at 600..4000 px wide
    python tools/bench_digitize.py --widths 600,4000 --extras noise,tiny --classical

The pages are made from one real page (--page, default the first of ../shared/realdev/renders_no_pulse)
resized to each width, plus extras: noise (random pixels, 1600 px), tiny (150 px), blank (white
2200 px), corrupt (a truncated PNG), grey16 (a 16-bit grey PNG of the page, 1400 px), jpeg (a JPEG of
the page, 3000 px). Prints one row per page (with lead II's correlation to the truth where the page
comes from a folder with test_truth/, as realdev's do) and exits 1 if any page got neither outputs
nor a reason.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]

from ecgdigit.digitize_cli import digitize_pages, load_pipeline
from ecgdigit.io.page_files import expand_pages

DEFAULT_PAGE_DIR = REPO.parent / "shared" / "realdev" / "renders_no_pulse" / "test"
EXTRAS = ("noise", "tiny", "blank", "corrupt", "grey16", "jpeg")


@dataclass
class Row:
    file: str
    size: str
    outcome: str  # "record" or "reason"
    seconds: float
    detail: str
    ii_r: float = float("nan")  # lead II read back vs the source page's truth, where it has one


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--page", type=Path, default=None, help="the real page to resize (default: see above)")
    p.add_argument("--widths", default="600,1000,1600,2200,3000,4000", help="comma-separated widths, px")
    p.add_argument("--extras", default=",".join(EXTRAS), help=f"comma-separated, of {EXTRAS}; '' for none")
    p.add_argument("--out", type=Path, default=None, help="folder for the pages and outputs (default: a temp one)")
    p.add_argument("--layout", choices=("auto", "competition"), default="auto")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--classical", action="store_true")
    p.add_argument("--device", default=None)
    p.set_defaults(strict_weights=True)  # a benchmark never measures a stage that fell back unseen
    return p.parse_args(argv)


def resize_to_width(image: np.ndarray, width: int) -> np.ndarray:
    f = width / image.shape[1]
    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def make_pages(page_bgr: np.ndarray, widths: list[int], extras: list[str], folder: Path) -> None:
    """The test pages as files, named by what they are (the name says what to expect of each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for w in widths:
        cv2.imwrite(str(folder / f"page-w{w}.png"), resize_to_width(page_bgr, w))
    rng = np.random.default_rng(0)
    for extra in extras:
        if extra == "noise":
            cv2.imwrite(str(folder / "noise-w1600.png"), rng.integers(0, 256, (1236, 1600, 3), dtype=np.uint8))
        elif extra == "tiny":
            cv2.imwrite(str(folder / "tiny-w150.png"), resize_to_width(page_bgr, 150))
        elif extra == "blank":
            cv2.imwrite(str(folder / "blank-w2200.png"), np.full((1700, 2200, 3), 255, np.uint8))
        elif extra == "corrupt":
            ok, data = cv2.imencode(".png", resize_to_width(page_bgr, 800))
            (folder / "corrupt-w800.png").write_bytes(data.tobytes()[: len(data) // 3])
        elif extra == "grey16":
            grey = cv2.cvtColor(resize_to_width(page_bgr, 1400), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
            cv2.imwrite(str(folder / "grey16-w1400.png"), grey)
        elif extra == "jpeg":
            cv2.imwrite(str(folder / "jpeg-w3000.jpg"), resize_to_width(page_bgr, 3000), [cv2.IMWRITE_JPEG_QUALITY, 85])
        else:
            raise SystemExit(f"unknown extra {extra!r}; expected one of {EXTRAS}")


def image_size(path: Path) -> str:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return "unreadable" if img is None else f"{img.shape[1]}x{img.shape[0]}"


def truth_ii(page: Path) -> np.ndarray | None:
    """Lead II of the page's truth (folder/test/{id}.png -> folder/test_truth/{id}.csv), else None."""
    path = page.parent.parent / "test_truth" / f"{page.stem}.csv"
    return pd.read_csv(path)["II"].to_numpy() if path.is_file() else None


def ii_correlation(record_hea: Path, truth: np.ndarray | None) -> float:
    import wfdb

    if truth is None:
        return float("nan")
    rec = wfdb.rdrecord(str(record_hea.with_suffix("")))
    ii = rec.p_signal[:, rec.sig_name.index("II")]
    return float(np.corrcoef(ii, truth)[0, 1]) if len(ii) == len(truth) else float("nan")


def run(args: argparse.Namespace, work: Path) -> list[Row]:
    page = args.page
    if page is None:
        candidates = sorted(DEFAULT_PAGE_DIR.glob("*.png"))
        if not candidates:
            raise SystemExit(f"no --page given and no page in {DEFAULT_PAGE_DIR}")
        page = candidates[0]
    page_bgr = cv2.imread(str(page), cv2.IMREAD_COLOR)
    if page_bgr is None:
        raise SystemExit(f"{page}: not a readable image")
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    make_pages(page_bgr, widths, extras, work / "pages")
    pages = expand_pages([work / "pages"]).pages
    pipeline = load_pipeline(args)
    truth = truth_ii(page)
    rows = []
    t0 = time.perf_counter()
    for outcome in digitize_pages(pipeline, pages, work / "out", 500, args.layout, progress=False):
        t1 = time.perf_counter()
        if outcome.outputs is not None:
            o = outcome.outputs
            files_ok = all(p.is_file() for p in (o.record, o.record.with_suffix(".dat"), o.csv, o.overlay))
            rows.append(Row(outcome.page.name, image_size(outcome.page), "record" if files_ok else "MISSING FILES",
                            o.seconds, "; ".join([str(o.record), *(f"CAUTION: {c}" for c in o.cautions)]),
                            ii_correlation(o.record, truth)))
        else:
            rows.append(Row(outcome.page.name, image_size(outcome.page), "reason", t1 - t0, outcome.problem or ""))
        t0 = time.perf_counter()
    return rows


def main(argv=None) -> list[Row]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the pipeline's per-lead warnings would bury the table
    print("$ python tools/bench_digitize.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    if args.out is not None:
        rows = run(args, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_digitize_") as tmp:
            rows = run(args, Path(tmp))
    print(f"{'file':<20} {'size':>10} {'outcome':>8} {'s':>6} {'II r':>6}  detail")
    for r in rows:
        print(f"{r.file:<20} {r.size:>10} {r.outcome:>8} {r.seconds:6.2f} {r.ii_r:6.3f}  {r.detail}")
    read = [r.seconds for r in rows if r.outcome == "record"]
    if read:
        print(f"pages with a record: {len(read)} of {len(rows)}, {np.mean(read):.2f} s per page (mean)")
    return rows


if __name__ == "__main__":
    result = main()
    sys.exit(0 if all(r.outcome in ("record", "reason") and (r.outcome == "record" or r.detail) for r in result) else 1)
