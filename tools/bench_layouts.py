"""How well the pipeline finds and reads every registered lead arrangement, on generated pages.

    python tools/bench_layouts.py --seeds 3 --types 0001,0003 [--speeds 50]

Per case (arrangement, calibration pulse's side, gain, paper speed) and image type: the share of pages
whose arrangement, pulse side, gain and speed were found, and the SNR of what each page printed (the
competition's: signal and noise powers summed over the leads, each lead aligned and offset-removed
as the host does), median and worst. Pages: synthetic records (synth.generate.random_record, 500 Hz)
drawn by synth.render.arranged_layout, seeds from --seed-base. A 50 mm/s page shows 5 s: its SNR is
over those 5 s. Without a pulse the speed is assumed 25 mm/s, so the 50 mm/s no-pulse case is
expected to be found wrong (the limitation, measured).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time

import numpy as np

from ecgdigit.config import LEADS, parse_image_types
from ecgdigit.metric import snr_per_lead
from ecgdigit.pipeline import Pipeline
from ecgdigit.record_signals import record_signals
from ecgdigit.synth.generate import make_image, random_record
from ecgdigit.synth.render import RenderStyle, arranged_layout, render_page

CASES = (("3x4+1", "end", 10.0, 25.0), ("3x4+3", "end", 10.0, 25.0), ("3x4+3", "none", 10.0, 25.0),
         ("6x2", "start", 10.0, 25.0), ("6x2", "end", 5.0, 25.0), ("12x1", "end", 5.0, 25.0), ("12x1", "start", 5.0, 25.0),
         # the same pages at 50 mm/s, the competition's look among them (its pulse at the start), and one
         # without a pulse: read at the assumed 25 mm/s
         ("3x4+1", "start", 10.0, 50.0), ("3x4+1", "end", 10.0, 50.0), ("3x4+3", "end", 10.0, 50.0),
         ("6x2", "start", 10.0, 50.0), ("6x2", "end", 5.0, 50.0), ("12x1", "end", 5.0, 50.0),
         ("12x1", "start", 5.0, 50.0), ("3x4+3", "none", 10.0, 50.0))


def printed_snr_db(signals: np.ndarray, digitized, fs: int) -> float:
    """SNR (dB) of a reading over what the page printed of each lead, against the record's signals."""
    sig = record_signals(digitized, fs)
    s = n = 0.0
    for k, _lead in enumerate(LEADS):
        ok = np.isfinite(sig[:, k])
        if ok.sum() > 1:
            a, b = snr_per_lead(signals[:len(sig)][ok, k], sig[ok, k], fs)
            s, n = s + a, n + b
    return float(10 * np.log10(s / n)) if n > 0 else float("nan")


def one_page(pipeline: Pipeline, arrangement: str, pulse: str, gain: float, speed: float, image_type: str, seed: int):
    rng = np.random.default_rng(seed)
    rec = random_record(rng, str(seed), fs=500)
    page = render_page(rec, rng, arranged_layout(arrangement, pulse, gain, speed), RenderStyle(show_calibration=pulse != "none"))
    im = make_image(rec, image_type, rng, page=page, orientation=0)
    res = pipeline.run(im.image)
    f = res.stage1.layout_found
    found = f is not None and (f.arrangement, f.pulse_side) == (arrangement, pulse) and \
        (pulse == "none" or f.layout.mm_per_mv == gain) and f.layout.mm_per_s == speed
    return found, printed_snr_db(rec.signals, res.digitized, rec.fs), (f.describe() if f else "no grid map")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="pages per case and image type")
    p.add_argument("--seed-base", type=int, default=880000)
    p.add_argument("--types", type=parse_image_types, default=("0001", "0003"))
    p.add_argument("--classical", action="store_true", help="Pipeline(): no models")
    p.add_argument("--speeds", type=lambda t: tuple(float(v) for v in t.split(",")), default=(25.0, 50.0),
                   help="paper speeds of the cases to run, mm/s (default 25,50)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print("$ python tools/bench_layouts.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    pipeline = Pipeline() if args.classical else Pipeline.load()
    print(f"{'arrangement':<12} {'pulse':<6} {'mm/mV':>5} {'mm/s':>4} {'type':<5} {'found':>6} {'median dB':>9} {'worst dB':>8} {'s/page':>7}")
    for arrangement, pulse, gain, speed in CASES:
        if speed not in args.speeds:
            continue
        for image_type in args.types:
            t0 = time.perf_counter()
            rows = [one_page(pipeline, arrangement, pulse, gain, speed, image_type, args.seed_base + k) for k in range(args.seeds)]
            found = sum(r[0] for r in rows)
            snr = [r[1] for r in rows]
            print(f"{arrangement:<12} {pulse:<6} {gain:>5g} {speed:>4g} {image_type:<5} {found:>3}/{len(rows):<2} {np.median(snr):9.2f} "
                  f"{min(snr):8.2f} {(time.perf_counter() - t0) / len(rows):7.1f}", flush=True)
            for ok, db, what in rows:
                if not ok:
                    print(f"    not found: {what} ({db:.2f} dB)")


if __name__ == "__main__":
    main()
