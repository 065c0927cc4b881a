"""The embedded default: a small fixed synthetic competition that needs no download.

Made on first use (a few seconds) rather than committed, so the repository stays small and the
sample always matches the current generator. One test image of every image type, with truth.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from ..config import IMAGE_TYPES, SYNTH_VERSION, paths
from .competition_writer import WriterOptions, write_competition

logger = logging.getLogger(__name__)

EMBEDDED_OPTIONS = WriterOptions(n_train=1, n_test=len(IMAGE_TYPES), seed=20261125, max_side=None)
MARKER = "EMBEDDED_SAMPLE.json"


def ensure_embedded_sample(root: str | Path | None = None, progress: bool = True) -> Path:
    """The sample's folder, (re)generated when missing or made with other options."""
    root = Path(root) if root is not None else paths().embedded_sample
    want = json.dumps({**asdict(EMBEDDED_OPTIONS), "synth_version": SYNTH_VERSION}, sort_keys=True)
    marker = root / MARKER
    if marker.exists() and marker.read_text() == want:
        return root
    if root.exists():
        shutil.rmtree(root)
    logger.info("generating the embedded synthetic sample in %s", root)
    write_competition(root, EMBEDDED_OPTIONS, progress=progress)
    marker.write_text(want)
    return root
