"""One synthetic record drawn in every image type (config.IMAGE_TYPES order), as a labelled grid PNG.

    python tools/contact_sheet.py                      # docs/contact_sheet.png, 3 x 3, 700 px cells
    python tools/contact_sheet.py --seed 5 --cell-width 500 --out /tmp/sheet.png

Each cell holds the whole image as the competition would give it (turned pages stay turned),
letterboxed into a 4:3 box, with the type code, name and image size as its caption. The PNG is
palette-quantized so that it stays small enough to commit (about 1 MB at the default size).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


from ecgdigit.config import IMAGE_TYPES, paths
from ecgdigit.synth.generate import make_image, random_record
from ecgdigit.synth.render import render_page

CELL_ASPECT = 0.75  # cell height / width: photos are 4:3, the page 1700:2200
CAPTION_FRAC = 0.06  # caption band height / cell width
PAD = 6  # px between cells
BACKGROUND = (235, 235, 235)


@dataclass(frozen=True)
class SheetLayout:
    cols: int
    rows: int
    cell_w: int

    @property
    def cell_h(self) -> int:
        return int(round(self.cell_w * CELL_ASPECT))

    @property
    def caption_h(self) -> int:
        return max(16, int(round(self.cell_w * CAPTION_FRAC)))

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the whole sheet."""
        return (self.rows * (self.cell_h + self.caption_h + PAD) + PAD, self.cols * (self.cell_w + PAD) + PAD)


def sheet_layout(n: int, cols: int, cell_w: int) -> SheetLayout:
    return SheetLayout(cols, int(math.ceil(n / cols)), cell_w)


def letterbox(image: np.ndarray, w: int, h: int) -> np.ndarray:
    s = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(image, (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))),
                       interpolation=cv2.INTER_AREA)
    out = np.full((h, w, 3), BACKGROUND, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y: y + small.shape[0], x: x + small.shape[1]] = small
    return out


def caption(text: str, w: int, h: int) -> np.ndarray:
    band = np.full((h, w, 3), 255, np.uint8)
    scale = h / 40.0
    thick = max(1, int(round(h / 20)))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    if tw > w - 8:  # shrink long captions to fit
        scale *= (w - 8) / tw
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.putText(band, text, (6, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return band


def build_sheet(images: list[tuple[str, np.ndarray]], cols: int = 3, cell_w: int = 700) -> np.ndarray:
    """Labelled grid (RGB uint8) of (caption, image) pairs, row by row."""
    lay = sheet_layout(len(images), cols, cell_w)
    sheet = np.full((*lay.size, 3), BACKGROUND, np.uint8)
    for k, (text, img) in enumerate(images):
        r, c = divmod(k, cols)
        y = PAD + r * (lay.cell_h + lay.caption_h + PAD)
        x = PAD + c * (cell_w + PAD)
        sheet[y: y + lay.caption_h, x: x + cell_w] = caption(text, cell_w, lay.caption_h)
        sheet[y + lay.caption_h: y + lay.caption_h + lay.cell_h, x: x + cell_w] = letterbox(img, cell_w, lay.cell_h)
    return sheet


def save_small_png(path: Path, rgb: np.ndarray, colors: int = 256) -> int:
    """Palette PNG (median-cut colours, zlib 9): a fraction of the RGB PNG's size. Returns bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path.stat().st_size


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=paths().repo / "docs" / "contact_sheet.png")
    p.add_argument("--seed", type=int, default=3, help="the record and every capture are drawn from it")
    p.add_argument("--fs", type=int, default=500)
    p.add_argument("--cols", type=int, default=3)
    p.add_argument("--cell-width", type=int, default=700, help="px per thumbnail")
    p.add_argument("--max-side", type=int, default=None, help="cap photo sizes while generating (speed)")
    p.add_argument("--colors", type=int, default=256, help="palette size of the PNG (smaller file, fewer colours)")
    args = p.parse_args(argv)
    if args.cols < 1 or args.cell_width < 64 or not 2 <= args.colors <= 256:
        p.error("--cols >= 1, --cell-width >= 64 and 2 <= --colors <= 256")
    return args


def main(argv=None) -> Path:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rec = random_record(rng, f"contact{args.seed}", args.fs)
    page = render_page(rec, rng)  # one page, every capture of it
    kw = {"max_side": args.max_side} if args.max_side else {}
    images = []
    for t, name in IMAGE_TYPES.items():
        im = make_image(rec, t, rng, page=page, **kw)
        h, w = im.image.shape[:2]
        turn = f", turned {90 * im.orientation}" if im.orientation else ""
        images.append((f"{t} {name}  ({w}x{h}{turn})", im.image))
    sheet = build_sheet(images, args.cols, args.cell_width)
    size = save_small_png(args.out, sheet, args.colors)
    print(f"wrote {args.out}: {sheet.shape[1]}x{sheet.shape[0]} px, {size / 1e6:.2f} MB, record seed {args.seed}")
    return args.out


if __name__ == "__main__":
    main()
    sys.exit(0)
