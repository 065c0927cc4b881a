"""One forward pass of a model under training, outside the training step: the hold-out's metrics
(training/tasks.py) and the loop (engine.py) share it."""
from __future__ import annotations

import numpy as np
import torch


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def predict(model, x: np.ndarray, dev: torch.device, tile_h: int | None = None, overlap: int = 32) -> dict[str, np.ndarray]:
    """Forward one CHW input; with tile_h, dense heads run on horizontal bands (bounded memory)."""
    model.eval()
    xt = torch.from_numpy(x)[None].to(dev)
    h = xt.shape[-2]
    if tile_h is None or h <= tile_h:
        return {k: v[0].float().cpu().numpy() for k, v in model(xt).items()}
    stride = {k: s for k, s in unwrap(model).output_strides.items() if s}
    outs: dict[str, np.ndarray] = {}
    y0 = 0
    while y0 < h:
        a = max(0, y0 - overlap)
        b = min(h, y0 + tile_h + overlap)
        o = model(xt[..., a:b, :])
        for k, s in stride.items():
            v = o[k][0].float().cpu().numpy()
            full = outs.setdefault(k, np.zeros((v.shape[0], -(-h // s), v.shape[2]), np.float32))
            lo, hi = y0 // s, min(h, y0 + tile_h) // s
            full[:, lo:hi] = v[:, lo - a // s: hi - a // s]
        y0 += tile_h
    return outs
