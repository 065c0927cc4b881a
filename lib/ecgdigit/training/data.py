"""Training streams: a new synthetic image every step, and an optional real-competition source.

Seeding: every (run seed, start step, DDP rank, DataLoader worker) gets its own numpy stream, so
ranks and workers never repeat each other, a resumed run continues with fresh images, and the same
command gives the same data. The hold-out set uses its own seed and never overlaps the stream.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..config import LEADS, PAGE
from ..geometry.coordinate_map import CoordinateMap
from ..geometry.homography import identity_page_homography
from ..io.competition_files import CompetitionFolder
from ..stages.ink import ink_from_rgb
from ..stages.stage0_normalize import normalize
from ..stages.stage1_rectify import rectify
from ..stages.trace_reading import read_row_curves
from ..synth.generate import make_image, random_record
from ..synth.render import render_page, row_polylines
from ..synth.truth import EcgRecord, RenderedPage, SyntheticImage
from . import targets as T
from .configs import StageTrainConfig
from .tasks import get_task

logger = logging.getLogger(__name__)


def stream_seed(seed: int, start_step: int, rank: int, worker: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), int(start_step), int(rank), int(worker)])


def head_stride(cfg: StageTrainConfig) -> int:
    return 1 if cfg.model.upsample_to_input else int(cfg.model.decoder_out_stride)


def draw_record_page(rng: np.random.Generator, image_id: str = "synth") -> tuple[EcgRecord, RenderedPage]:
    record = random_record(rng, image_id)
    return record, render_page(record, rng)


def draw_image(cfg: StageTrainConfig, rng: np.random.Generator, image_id: str = "synth",
               record_page: tuple[EcgRecord, RenderedPage] | None = None) -> SyntheticImage:
    """One synthetic capture: random record, fs and image type (weighted toward the hard types).

    record_page reuses an already rendered page (rendering is about half the cost of an image).
    """
    d = cfg.data
    types = sorted(d.type_weights)
    p = np.array([d.type_weights[t] for t in types], np.float64)
    image_type = types[int(rng.choice(len(types), p=p / p.sum()))]
    record, page = record_page if record_page is not None else draw_record_page(rng, image_id)
    kw: dict = {"photometric": d.photometric}
    if d.image_size is not None:
        kw["size"] = tuple(d.image_size)
    elif d.max_side is not None and image_type != "0001":
        kw["max_side"] = int(d.max_side)
    kw.update(get_task(cfg.stage).capture_kwargs(cfg, rng))
    return make_image(record, image_type, rng, page=page, **kw)


def make_sample(cfg: StageTrainConfig, syn: SyntheticImage, rng: np.random.Generator) -> T.Sample:
    """(input CHW float32, targets) of one training sample of cfg's stage."""
    return get_task(cfg.stage).sample(cfg, syn, rng, head_stride(cfg))


class SyntheticStream(IterableDataset):
    """Endless (input, targets) samples of one stage, a fresh synthetic image every samples_per_image."""

    def __init__(self, cfg: StageTrainConfig, seed: int | None = None, start_step: int = 0, rank: int = 0,
                 extra_source=None, extra_fraction: float = 0.0):
        self.cfg = cfg
        self.seed = cfg.seed if seed is None else int(seed)
        self.start_step = int(start_step)
        self.rank = int(rank)
        self.extra_source = extra_source
        self.extra_fraction = float(extra_fraction)

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng(stream_seed(self.seed, self.start_step, self.rank, worker))
        if info is not None:  # in a worker only: with workers=0 this runs in the training process itself
            torch.set_num_threads(1)  # the generator is numpy/cv2; keep worker threads off the model's cores
        n = 0
        d = self.cfg.data
        task = get_task(self.cfg.stage)
        while True:
            rp = None
            for _ in range(max(1, d.images_per_page)):
                if self.extra_source is not None and rng.random() < self.extra_fraction:
                    syn = self.extra_source.draw(rng)
                else:
                    if rp is None:
                        rp = draw_record_page(rng, f"r{self.rank}w{worker}n{n}")
                    syn = draw_image(self.cfg, rng, record_page=rp)
                for i in range(max(1, d.samples_per_image)):
                    # a task may make the capture's further samples from a variant of it (stage 0: turned)
                    more = i > 0 and task.another_capture is not None
                    yield make_sample(self.cfg, task.another_capture(self.cfg, syn, rng) if more else syn, rng)
            n += 1


def collate(batch: list[T.Sample]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    xs = torch.from_numpy(np.stack([b[0] for b in batch]))
    keys = batch[0][1].keys()
    ys = {k: torch.from_numpy(np.stack([np.asarray(b[1][k]) for b in batch])) for k in keys}
    return xs, ys


# ---------------------------------------------------------------- hold-out
@dataclass
class HoldoutItem:
    syn: SyntheticImage
    seed: int


def holdout_set(cfg: StageTrainConfig, n: int | None = None) -> list[HoldoutItem]:
    """The fixed hold-out images: seeded by cfg.holdout_seed + index, independent of training."""
    out = []
    for i in range(cfg.holdout_n if n is None else n):
        s = cfg.holdout_seed + i
        out.append(HoldoutItem(draw_image(cfg, np.random.default_rng(s), f"holdout{i}"), s))
    return out


# ---------------------------------------------------------------- real images
class CompetitionSource:
    """Real training images of the competition, with the labels their truth allows.

    Only stage 2 can be labelled from real data: the series CSV gives every printed trace exactly,
    but not where the page lies in the picture. For the clean render (0001) the page IS the image
    (200 dpi, layout checked within 0.5 px), so the page map is the image frame's scaling and the
    masks are exact. For the other types the geometry comes from the classical stages 0+1; such an
    image is kept only if the model-free trace reading agrees with the series-derived traces within
    `max_disagreement_px` (median, page px), so geometry errors do not become label noise.
    draw(rng) returns a SyntheticImage-like record (image, page_to_image, page.traces, record) that
    stage2_sample accepts unchanged. Stages 0 and 1 should not use this source.

    Two layouts are read: the competition's train set (train.csv, train/{id}/{id}-{type}.png,
    train/{id}/{id}.csv) and a scored test folder such as ../shared/realdev's (test.csv, test/{id}.png,
    test_truth/{id}.csv, test_truth/image_types.csv; an image without a listed type counts as 0001).
    A test folder's 0001 pages are checked like the other types: such folders hold pages in other
    layouts too (realdev's renders_no_pulse start the signal one square left, and half of them print
    every column from 0 s), where the identity map would turn the truth into wrong labels.
    """

    def __init__(self, folder, image_types: tuple[str, ...] = ("0001",), max_disagreement_px: float = 1.5):
        self.folder = folder if isinstance(folder, CompetitionFolder) else CompetitionFolder(folder)
        self.test_layout = not self.folder.train_csv_path.is_file() and self.folder.test_csv_path.is_file() \
            and self.folder.has_truth()
        if self.test_layout:
            test = self.folder.test()
            fs_of = test.groupby("id", sort=False)["fs"].first()
            types = self.folder.test_image_types()
            self.items = [(str(i), int(fs), types.get(str(i), "0001")) for i, fs in fs_of.items()
                          if types.get(str(i), "0001") in image_types and self.folder.test_image_path(str(i)).is_file()
                          and self.folder.test_truth_path(str(i)).is_file()]
        else:
            train = self.folder.train()
            self.items = [(str(i), int(fs), t) for i, fs in zip(train["id"], train["fs"]) for t in image_types
                          if self.folder.train_image_path(str(i), t).is_file()]
        if not self.items:
            raise FileNotFoundError(f"{self.folder.root}: no {'test' if self.test_layout else 'train'} images "
                                    f"with truth of types {image_types}")
        self.max_disagreement_px = float(max_disagreement_px)

    def __len__(self) -> int:
        return len(self.items)

    def record(self, image_id: str, fs: int) -> EcgRecord:
        series = self.folder.test_truth(image_id) if self.test_layout else self.folder.train_series(image_id)
        sig = np.nan_to_num(series[list(LEADS)].to_numpy(np.float32), nan=0.0)
        return EcgRecord(image_id, fs, sig)

    def load(self, k: int) -> SyntheticImage | None:
        image_id, fs, image_type = self.items[k]
        image = (self.folder.test_image(image_id) if self.test_layout
                 else self.folder.train_image(image_id, image_type))
        rec = self.record(image_id, fs)
        # the traces as the generator draws them: with the pen's offset, where ECG-image-kit's ink is
        page = RenderedPage(image=image, traces=[np.concatenate(s, 0) for s in row_polylines(rec)], label_boxes={})
        if image_type == "0001":
            cmap = CoordinateMap.from_homography(identity_page_homography(image.shape[:2]).H, PAGE.shape, image.shape[:2])
            if not self.test_layout:
                return SyntheticImage(image, image_type, cmap, 0, page, rec)
            orientation = 0
        else:
            s0 = normalize(image)
            s1 = rectify(s0.upright, s0.H)
            cmap = rotate_map_source(s1.page_to_image, s0.orientation)  # page -> the image as stored
            orientation = s0.orientation
        scale = 1.0
        rect = cmap.remap(image, scale=scale)
        curves = read_row_curves([ink_from_rgb(rect)] * len(page.traces), scale)
        errs = []
        for c, tr in zip(curves, page.traces):
            y_true = np.interp(c.x / scale, tr[:, 0], tr[:, 1])
            errs.append(np.median(np.abs(c.y / scale - y_true)))
        if float(np.max(errs)) > self.max_disagreement_px:
            logger.debug("real image %s-%s rejected: classical geometry disagrees by %.2f px", image_id,
                         image_type, float(np.max(errs)))
            return None
        return SyntheticImage(image, image_type, cmap, orientation, page, rec)

    def draw(self, rng: np.random.Generator, tries: int = 5) -> SyntheticImage:
        for _ in range(tries):
            syn = self.load(int(rng.integers(len(self.items))))
            if syn is not None:
                return syn
        raise RuntimeError(f"{self.folder.root}: {tries} real images in a row were rejected")


def describe(cfg: StageTrainConfig) -> str:
    d = cfg.data
    return (f"synthetic stream (ecgdigit.synth), new image every {max(1, d.samples_per_image)} sample(s); "
            f"type weights {d.type_weights}; image_size={d.image_size} max_side={d.max_side} "
            f"photometric={d.photometric}; stage {cfg.stage} input {cfg.input_size} scale {cfg.scale}"
            + get_task(cfg.stage).data_note)
