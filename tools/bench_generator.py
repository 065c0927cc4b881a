"""Speed of the synthetic generator: images per second per core, per image type, at full size.

    python tools/bench_generator.py                       # 3 images per type, one process
    python tools/bench_generator.py --n 5 --workers 2     # also the multi-process rate
    python tools/bench_generator.py --types 0005,0006 --max-side 1400

One image = a new record (signals) + its clean page (render) + the type's capture (degrade); the
PNG encode that the writer adds is timed apart. The training writer renders a page once and
degrades it into every type, so its rate per core is given too ("shared render").
Timings are wall clock on a possibly busy machine: compare runs made side by side.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing import get_context

import cv2
import numpy as np


from ecgdigit.config import IMAGE_TYPES
from ecgdigit.synth.degrade import degrade
from ecgdigit.synth.generate import random_record
from ecgdigit.synth.render import render_page

SEED = 4242  # any seed: the timings do not depend on it beyond image sizes drawn


@dataclass
class ImageTiming:
    image_type: str
    signals_s: float
    render_s: float
    degrade_s: float
    png_s: float
    height: int
    width: int

    @property
    def generate_s(self) -> float:
        return self.signals_s + self.render_s + self.degrade_s


@dataclass
class TypeRow:
    image_type: str
    n: int
    signals_ms: float
    render_ms: float
    degrade_ms: float
    png_ms: float
    megapixels: float
    images_per_s: float  # 1 / mean(signals + render + degrade)
    images_per_s_png: float  # the same including the PNG encode


def time_one(image_type: str, seed: int, max_side: int | None) -> ImageTiming:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    rec = random_record(rng, str(seed))
    t1 = time.perf_counter()
    page = render_page(rec, rng)
    t2 = time.perf_counter()
    d = degrade(page.image, image_type, rng, **({"max_side": max_side} if max_side else {}))
    t3 = time.perf_counter()
    # as competition_writer.save_png encodes (BGR, compression 1)
    ok, _ = cv2.imencode(".png", cv2.cvtColor(d.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    t4 = time.perf_counter()
    if not ok:
        raise RuntimeError(f"PNG encode failed for type {image_type}")
    return ImageTiming(image_type, t1 - t0, t2 - t1, t3 - t2, t4 - t3, *d.image.shape[:2])


def summarize(timings: list[ImageTiming], image_type: str) -> TypeRow:
    ts = [t for t in timings if image_type in ("all", t.image_type)]
    gen = float(np.mean([t.generate_s for t in ts]))
    png = float(np.mean([t.png_s for t in ts]))
    return TypeRow(image_type, len(ts), 1e3 * float(np.mean([t.signals_s for t in ts])),
                   1e3 * float(np.mean([t.render_s for t in ts])), 1e3 * float(np.mean([t.degrade_s for t in ts])),
                   1e3 * png, float(np.mean([t.height * t.width for t in ts])) / 1e6, 1.0 / gen, 1.0 / (gen + png))


def format_table(rows: list[TypeRow]) -> str:
    head = (f"{'type':6} {'name':18} {'n':>3} {'MPix':>5} {'signals ms':>10} {'render ms':>9} {'degrade ms':>10} "
            f"{'png ms':>7} {'img/s':>6} {'img/s+png':>9}")
    lines = [head]
    for r in rows:
        name = IMAGE_TYPES.get(r.image_type, "(mean of types)")
        lines.append(f"{r.image_type:6} {name:18} {r.n:>3} {r.megapixels:>5.1f} {r.signals_ms:>10.0f} "
                     f"{r.render_ms:>9.0f} {r.degrade_ms:>10.0f} {r.png_ms:>7.0f} {r.images_per_s:>6.2f} "
                     f"{r.images_per_s_png:>9.2f}")
    return "\n".join(lines)


def _init_worker(cv2_threads: int) -> None:
    if cv2_threads > 0:
        cv2.setNumThreads(cv2_threads)


def _job(args) -> float:
    image_type, seed, max_side = args
    return time_one(image_type, seed, max_side).generate_s


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3, help="images per type (default 3)")
    p.add_argument("--types", default="all", help="'all' or a comma list of type codes, e.g. 0001,0005")
    p.add_argument("--max-side", type=int, default=None, help="cap photo sizes (px); default: competition sizes")
    p.add_argument("--workers", type=int, default=1, help="also measure the rate of N processes (N > 1)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--cv2-threads", type=int, default=1,
                   help="cv2.setNumThreads in every process (default 1: a rate per core; 0: cv2's default)")
    args = p.parse_args(argv)
    args.types = list(IMAGE_TYPES) if args.types.strip().lower() == "all" else \
        [t.strip() for t in args.types.split(",") if t.strip()]
    bad = [t for t in args.types if t not in IMAGE_TYPES]
    if bad or not args.types:
        p.error(f"unknown image type(s) {bad or args.types}; known: {', '.join(IMAGE_TYPES)}")
    if args.n < 1 or args.workers < 1:
        p.error("--n and --workers must be >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    cmd = " ".join(["python tools/bench_generator.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"$ {cmd}")
    _init_worker(args.cv2_threads)
    print(f"generator speed, one process (cv2 threads {cv2.getNumThreads()}, {os.cpu_count()} cores), "
          f"max_side {args.max_side or 'none (competition sizes)'}")
    jobs = [(t, args.seed + 1000 * k + i, args.max_side) for k, t in enumerate(args.types) for i in range(args.n)]
    # one warm-up image so that imports, fonts and caches do not count
    time_one(args.types[0], args.seed - 1, args.max_side)
    timings = [time_one(*j) for j in jobs]
    rows = [summarize(timings, t) for t in args.types] + [summarize(timings, "all")]
    print(format_table(rows))
    # the writer's training layout: one record + one render, degraded into every requested type
    sig = np.mean([t.signals_s for t in timings])
    ren = np.mean([t.render_s for t in timings])
    deg = sum(np.mean([t.degrade_s for t in timings if t.image_type == ty]) for ty in args.types)
    shared = len(args.types) / (sig + ren + deg)
    print(f"shared render (training layout, one page -> {len(args.types)} types): {shared:.2f} images/s per process")
    result = {"rows": rows, "shared_render_images_per_s": float(shared)}
    if args.workers > 1:
        with get_context("spawn").Pool(args.workers, _init_worker, (args.cv2_threads,)) as pool:
            pool.map(_job, [(args.types[0], args.seed - 2 - w, args.max_side) for w in range(args.workers)])  # warm-up
            t0 = time.perf_counter()
            pool.map(_job, jobs, chunksize=1)
            wall = time.perf_counter() - t0
        rate = len(jobs) / wall
        print(f"{args.workers} processes: {len(jobs)} images in {wall:.1f} s -> {rate:.2f} images/s "
              f"({rate / args.workers:.2f} per process; one process measured {rows[-1].images_per_s:.2f})")
        result["multi_process_images_per_s"] = rate
    print("note: wall-clock timings; other jobs on this machine make them noisy")
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
