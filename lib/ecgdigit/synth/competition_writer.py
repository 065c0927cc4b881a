"""Write a whole competition-format folder of synthetic records, with truth kept beside the test set.

Layout (the Kaggle one, plus our truth):
  train.csv                     id, fs, sig_len
  train/{id}/{id}-{type}.png    every requested image type of the record
  train/{id}/{id}.csv           the signals (NaN outside short leads' windows)
  train/{id}/{id}-{type}.truth.npz   geometry truth: page->image lattice, orientation, traces, labels
  test.csv                      id, lead, fs, number_of_rows
  test/{id}.png                 one image per test record
  test_truth/{id}.csv           its signals; test_truth/{id}.truth.npz its geometry
  test_truth/image_types.csv    id, image_type (for per-type scores)
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..config import IMAGE_TYPES, LEADS, SAMPLING_RATES, number_of_rows
from ..geometry.coordinate_map import CoordinateMap
from .generate import make_image, random_record
from .render import render_page
from .truth import SyntheticImage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterOptions:
    n_train: int = 40
    n_test: int = 10
    train_types: tuple[str, ...] = tuple(IMAGE_TYPES)
    test_types: tuple[str, ...] = tuple(IMAGE_TYPES)
    seed: int = 0
    max_side: int | None = None  # cap photo sizes (speed); None = the competition's sizes
    workers: int = 1


@dataclass
class WriteSummary:
    root: Path
    n_images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


def save_png(path: Path, image_rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {path}")


def save_geometry_truth(path: Path, im: SyntheticImage) -> None:
    m = im.page_to_image
    arrays = {f"trace_row{r}": t for r, t in enumerate(im.page.traces)}
    np.savez_compressed(
        path, page_to_image=m.src_xy, step=m.step, dst_size=np.array(m.dst_size), src_size=np.array(m.src_size),
        orientation=im.orientation, image_type=im.image_type, fs=im.record.fs,
        label_boxes=json.dumps(im.page.label_boxes), **arrays)


def load_geometry_truth(path: str | Path):
    """(CoordinateMap page->image, orientation, dict of the rest) from a .truth.npz."""
    z = np.load(path, allow_pickle=False)
    cmap = CoordinateMap(z["page_to_image"], float(z["step"]), tuple(int(v) for v in z["dst_size"]),
                         tuple(int(v) for v in z["src_size"]))
    rest = {k: z[k] for k in z.files if k not in ("page_to_image", "step", "dst_size", "src_size")}
    return cmap, int(z["orientation"]), rest


def _record_id(rng: np.random.Generator) -> str:
    return str(int(rng.integers(10**8, 10**10)))


def _degrade_kw(opts: WriterOptions) -> dict:
    return {"max_side": opts.max_side} if opts.max_side else {}


def _write_train_record(args) -> int:
    root, rid, fs, seed, opts = args
    rng = np.random.default_rng(seed)
    rec = random_record(rng, rid, fs)
    page = render_page(rec, rng)
    folder = root / "train" / rid
    folder.mkdir(parents=True, exist_ok=True)
    rec.to_competition_frame().to_csv(folder / f"{rid}.csv", index=False)
    for t in opts.train_types:
        im = make_image(rec, t, rng, page=page, **_degrade_kw(opts))
        save_png(folder / f"{rid}-{t}.png", im.image)
        save_geometry_truth(folder / f"{rid}-{t}.truth.npz", im)
    return len(opts.train_types)


def _write_test_record(args) -> int:
    root, rid, fs, image_type, seed, opts = args
    rng = np.random.default_rng(seed)
    rec = random_record(rng, rid, fs)
    im = make_image(rec, image_type, rng, **_degrade_kw(opts))
    save_png(root / "test" / f"{rid}.png", im.image)
    truth = root / "test_truth"
    rec.to_competition_frame().to_csv(truth / f"{rid}.csv", index=False)
    save_geometry_truth(truth / f"{rid}.truth.npz", im)
    return 1


def test_csv_rows(rid: str, fs: int) -> list[dict]:
    return [{"id": rid, "lead": lead, "fs": fs, "number_of_rows": number_of_rows(lead, fs)} for lead in LEADS]


def write_competition(root: str | Path, opts: WriterOptions = WriterOptions(), progress: bool = True) -> WriteSummary:
    """Deterministic by opts.seed: the same options give the same files."""
    root = Path(root)
    for bad in set(opts.train_types + opts.test_types) - set(IMAGE_TYPES):
        raise ValueError(f"unknown image type {bad!r}; known: {sorted(IMAGE_TYPES)}")
    (root / "test").mkdir(parents=True, exist_ok=True)
    (root / "test_truth").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(opts.seed)
    seeds = np.random.SeedSequence(opts.seed).spawn(opts.n_train + opts.n_test)
    ids: set[str] = set()

    def new_id() -> str:
        while (rid := _record_id(rng)) in ids:
            pass
        ids.add(rid)
        return rid

    train_jobs, train_rows = [], []
    for i in range(opts.n_train):
        rid, fs = new_id(), int(rng.choice(SAMPLING_RATES))
        train_jobs.append((root, rid, fs, seeds[i], opts))
        train_rows.append({"id": rid, "fs": fs, "sig_len": int(round(10 * fs))})
    test_jobs, test_rows, types = [], [], []
    for i in range(opts.n_test):
        rid, fs = new_id(), int(rng.choice(SAMPLING_RATES))
        t = opts.test_types[i % len(opts.test_types)]  # every requested type, in turn
        test_jobs.append((root, rid, fs, t, seeds[opts.n_train + i], opts))
        test_rows += test_csv_rows(rid, fs)
        types.append({"id": rid, "image_type": t})

    pd.DataFrame(train_rows, columns=["id", "fs", "sig_len"]).to_csv(root / "train.csv", index=False)
    pd.DataFrame(test_rows, columns=["id", "lead", "fs", "number_of_rows"]).to_csv(root / "test.csv", index=False)
    pd.DataFrame(types, columns=["id", "image_type"]).to_csv(root / "test_truth" / "image_types.csv", index=False)

    jobs = [(_write_train_record, j) for j in train_jobs] + [(_write_test_record, j) for j in test_jobs]
    total = opts.n_train * len(opts.train_types) + opts.n_test
    t0 = time.perf_counter()
    n = 0
    with tqdm(total=total, desc="synthetic images", unit="img", disable=not progress) as bar:
        if opts.workers > 1:
            with get_context("spawn").Pool(opts.workers) as pool:
                for k in pool.imap_unordered(_run_job, jobs):
                    n += k
                    bar.update(k)
        else:
            for job in jobs:
                k = _run_job(job)
                n += k
                bar.update(k)
    seconds = time.perf_counter() - t0
    logger.info("wrote %d images to %s in %.1f s (%.2f images/s)", n, root, seconds, n / max(seconds, 1e-9))
    return WriteSummary(root, n, seconds)


def _run_job(job) -> int:
    fn, args = job
    return fn(args)
