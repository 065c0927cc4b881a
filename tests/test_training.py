"""Training engine: targets agree with the truth and with the pixels, the loop runs, resumes, learns."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgdigit.config import PAGE
from ecgdigit.geometry.grid_map import major_lattice
from ecgdigit.geometry.orientation import rotate_points
from ecgdigit.models.frames import input_coords
from ecgdigit.models.stage_models import build_model
from ecgdigit.models.weights_io import load_stage_model, read_manifest
from ecgdigit.synth.generate import make_image
from ecgdigit.synth.render import render_page, trace_masks
from ecgdigit.synth.signals import simulate_record
from ecgdigit.training import targets as T
from ecgdigit.training.configs import stage_config
from ecgdigit.training.data import SyntheticStream, collate
from ecgdigit.training.engine import lr_factor, train
from ecgdigit.training.tasks import KEYPOINT_NAMES, stage_loss

LIB = Path(__file__).resolve().parents[1] / "lib"


@pytest.fixture(scope="module")
def record_page():
    rng = np.random.default_rng(3)
    rec = simulate_record(rng, 500, "t")
    return rec, render_page(rec, rng)


def _tiny(stage: int, **kw):
    cfg = stage_config(stage, "tiny")
    return dataclasses.replace(cfg, **kw) if kw else cfg


# ---------------------------------------------------------------- targets
def test_keypoints_fixed_by_layout(record_page):
    _, page = record_page
    pts = T.keypoint_page_positions(page)
    assert pts.shape == (len(KEYPOINT_NAMES), 2) == (16, 2)
    # labels are placed deterministically: every page has the reference positions
    np.testing.assert_allclose(pts, T.reference_keypoint_positions(), atol=1e-6)
    # label centres sit just right of each column start, below the row baselines
    assert np.all(pts[4:, 0] > PAGE.signal_x0) and np.all(pts[4:, 1] > PAGE.baselines_y[0])


@pytest.mark.parametrize("k", [0, 1])
def test_stage0_peaks_at_truth(record_page, k):
    rec, page = record_page
    syn = make_image(rec, "0001", np.random.default_rng(0), page=page, orientation=k)
    side, stride = 128, 2
    x, t = T.stage0_sample(syn, side, stride, sigma=1.0)
    assert x.shape == (3, side, side) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert t["keypoints"].shape == (16, side // stride, side // stride) and int(t["orientation"]) == k
    assert t["keypoints"].max() == 1.0 and t["keypoints"].min() >= 0
    # independent truth: the clean render is the page itself, turned k times
    img_pts = rotate_points(T.keypoint_page_positions(page), k, PAGE.shape)
    f = side / max(PAGE.shape)
    want = (img_pts + 0.5) * f - 0.5
    assert t["keypoints_valid"].all()
    np.testing.assert_allclose(t["keypoints_xy"], want, atol=1e-3)
    for c in range(16):
        iy, ix = np.unravel_index(np.argmax(t["keypoints"][c]), t["keypoints"][c].shape)
        peak = input_coords(np.array([ix, iy]), stride)
        assert np.abs(peak - want[c]).max() <= stride / 2 + 1e-6


def test_stage1_crossings_on_red_grid(record_page):
    rec, page = record_page
    rng = np.random.default_rng(1)
    syn = make_image(rec, "0003", rng, page=page, photometric=False, size=(826, 1069))
    scale, stride = 0.5, 2
    x, t = T.stage1_sample(syn, scale, (160, 224), stride, 1.0, 0.003, rng)
    assert x.shape == (3, 160, 224)
    assert t["gridpoints"].shape == (1, 80, 112) and t["gridlines"].shape == (2, 80, 112)
    assert t["valid"].shape == (1, 80, 112) and t["valid"].mean() > 0.5
    peaks = np.argwhere(t["gridpoints"][0] == 1.0)
    spacing = PAGE.grid_major_px * scale / stride
    expect = (80 / spacing) * (112 / spacing)
    assert 0.6 * expect <= len(peaks) <= 1.4 * expect
    # the targets sit on the image's major grid: red (R >> G) at the crossing pixels
    img = x.transpose(1, 2, 0)
    red = img[..., 0] - img[..., 1]
    at = [red[int(round(py * stride + 0.5)), int(round(px * stride + 0.5))] for py, px in peaks
          if py * stride + 1 < 160 and px * stride + 1 < 224]
    assert np.mean(at) > red.mean() + 0.25
    # line maps: horizontal lines are rows, vertical lines columns
    h, v = t["gridlines"]
    assert h.mean(axis=1).std() > h.mean(axis=0).std() and v.mean(axis=0).std() > v.mean(axis=1).std()


def test_stage1_identity_crossings_exact(record_page):
    rec, page = record_page
    syn = make_image(rec, "0001", np.random.default_rng(0), page=page)
    npage = T.normalized_page(syn, 0.25, 0.0, np.random.default_rng(0))
    pos, _ = major_lattice()
    got = npage.crossings()
    ok = np.isfinite(got).all(1)
    assert ok.mean() > 0.95
    np.testing.assert_allclose(got[ok], pos[ok] * 0.25, atol=0.05)


def test_stage2_masks_match_trace_masks(record_page):
    rec, page = record_page
    syn = make_image(rec, "0001", np.random.default_rng(0), page=page)
    scale = 0.5
    x, t = T.stage2_sample(syn, scale, (96, 256), 1, np.random.default_rng(5), warp=None)
    full = trace_masks(page, scale).astype(np.float32) / 255
    x0, y0 = T.stage2_window(np.random.default_rng(5), scale, (96, 256))  # the window the sample drew
    # same strokes; cv2 clips lines at the canvas edge, which moves anti-aliasing by a few levels
    # (and a line leaving the canvas is drawn a little differently in its last 2 px)
    np.testing.assert_allclose(t["traces"][:, 2:-2, 2:-2], full[:, y0 + 2:y0 + 94, x0 + 2:x0 + 254], atol=0.1)
    assert t["traces"].sum() > 50
    # and the crop of the image is the page there (identity geometry)
    np.testing.assert_allclose(x.transpose(1, 2, 0) * 255,
                               page.image[::2, ::2][y0:y0 + 96, x0:x0 + 256].astype(np.float32), atol=1)
    assert t["traces"].max() > 0.5 and t["valid"].min() == 1.0


def test_stage2_masks_follow_warped_ink(record_page):
    rec, page = record_page
    rng = np.random.default_rng(7)
    syn = make_image(rec, "0005", rng, page=page, photometric=False, size=(1100, 1467))
    warp = T.SmoothWarp.random(rng, 3.0, 0.2, 0.003, 1.0)
    for _ in range(5):  # a crop may miss the trace (negatives are part of training); take one that has it
        x, t = T.stage2_sample(syn, 1.0, (128, 384), 1, rng, warp=warp)
        if t["traces"].max() > 0.5:
            break
    assert x.shape == (3, 128, 384) and t["traces"].shape == (4, 128, 384)
    assert 0.0 <= t["traces"].min() and t["traces"].max() <= 1.0
    on = t["traces"].max(0) > 0.5
    assert on.sum() > 100
    grey = x.max(0)  # trace ink is dark in every channel; the red grid is not
    assert grey[on].mean() < grey[~on].mean() - 0.3
    # the inverse warp really inverts it
    p = np.random.default_rng(0).uniform(0, 2000, (50, 2))
    np.testing.assert_allclose(warp(warp.inverse(p)), p, atol=1e-3)


# ---------------------------------------------------------------- data, schedule
def test_stream_seeds_differ_and_repeat():
    cfg = _tiny(2)
    a = next(iter(SyntheticStream(cfg, rank=0)))[0]
    b = next(iter(SyntheticStream(cfg, rank=1)))[0]
    a2 = next(iter(SyntheticStream(cfg, rank=0)))[0]
    assert not np.array_equal(a, b) and np.array_equal(a, a2)


def test_lr_schedule():
    f = [lr_factor(s, 10, 100, 0.05) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(f[10:], f[11:])) and f[-1] == pytest.approx(0.05, abs=0.01)


# ---------------------------------------------------------------- the loop
@pytest.mark.parametrize("stage", [0, 1])
def test_tiny_run(tmp_path, stage):
    res = train(_tiny(stage, steps=2), tmp_path, device="cpu", progress=False)
    assert res.steps == 2 and (tmp_path / "checkpoint.pt").is_file()
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2]
    assert lines[-1]["final"] and lines[-1]["holdout"]
    model, cfg = load_stage_model(stage, tmp_path / "weights")
    assert cfg.stage == stage


def test_resume_and_weights(tmp_path):
    cfg = _tiny(2, steps=2, ckpt_every=1)
    train(cfg, tmp_path, device="cpu", progress=False, command="first")
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 2
    res = train(dataclasses.replace(cfg, steps=4), tmp_path, device="cpu", progress=False, command="second")
    assert res.steps == 4
    steps = [json.loads(s)["step"] for s in (tmp_path / "log.jsonl").read_text().splitlines()
             if "loss" in json.loads(s)]
    assert steps == [1, 2, 3, 4]  # continued at 3, not restarted
    entry = read_manifest(tmp_path / "weights")["weights"]["stage2_tiny.safetensors"]
    assert entry["training"]["steps"] == 4 and entry["training"]["command"] == "second"
    assert "snr_db" in entry["training"]["holdout"] and entry["training"]["data"]
    model, mcfg = load_stage_model(2, tmp_path / "weights")
    x = torch.rand(1, 3, 64, 96)
    assert model(x)["traces"].shape == (1, 4, 64, 96)
    assert mcfg.input_size == (170, 220)  # the page frame at the training scale


def test_overfit_one_batch():
    cfg = _tiny(2, batch_size=2)
    torch.manual_seed(0)
    x, y = collate([s for s, _ in zip(SyntheticStream(cfg), range(2))])
    model = build_model(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        loss, _ = stage_loss(2, model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_ddp_two_processes_gloo(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(LIB), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "ecgdigit.training.cli", "--stage", "1", "--variant", "tiny", "--steps", "2", "--device", "cpu",
           "--out", str(tmp_path), "--no-progress"]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.skip("2-process DDP run took more than 60 s on this machine")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "stage1" / "checkpoint.pt").is_file()
    assert torch.load(tmp_path / "stage1" / "checkpoint.pt", weights_only=False)["step"] == 2
    assert read_manifest(tmp_path / "weights")["weights"]["stage1_tiny.safetensors"]["training"]["world_size"] == 2
    assert time.time() - t0 < 120


def _kit_page(rec):
    """The record as ECG-image-kit draws it (matplotlib: strokes half a pixel up-left)."""
    from ecgdigit.synth.render import RenderStyle, matplotlib_look

    return render_page(rec, np.random.default_rng(3), style=matplotlib_look(RenderStyle()))


def test_competition_source_clean_images(tmp_path, record_page):
    import cv2

    from ecgdigit.training.data import CompetitionSource

    rec, _ = record_page
    page = _kit_page(rec)
    (tmp_path / "train" / "7").mkdir(parents=True)
    (tmp_path / "train.csv").write_text(f"id,fs,sig_len\n7,{rec.fs},{rec.n_samples}\n")
    rec.to_competition_frame().to_csv(tmp_path / "train" / "7" / "7.csv", index=False)
    cv2.imwrite(str(tmp_path / "train" / "7" / "7-0001.png"), cv2.cvtColor(page.image, cv2.COLOR_RGB2BGR))
    src = CompetitionSource(tmp_path)
    assert len(src) == 1
    syn = src.draw(np.random.default_rng(0))
    # the series-derived traces are the drawn ones (short leads only inside their windows)
    for a, b in zip(syn.page.traces, page.traces):
        np.testing.assert_allclose(a, b, atol=1e-3)
    x, t = T.stage2_sample(syn, 1.0, (128, 384), 1, np.random.default_rng(2), warp=None)
    on = t["traces"].max(0) > 0.5
    assert on.sum() > 100 and x.max(0)[on].mean() < x.max(0)[~on].mean() - 0.3


def _realdev_layout_folder(root: Path, rec, page, no_pulse_page=None) -> None:
    """A scored test folder as ../shared/realdev lays it out: test.csv, test/, test_truth/."""
    import cv2

    from ecgdigit.synth.competition_writer import test_csv_rows

    (root / "test").mkdir(parents=True)
    (root / "test_truth").mkdir()
    rows, types = [], []
    for rid, pg in (("7", page), ("8", no_pulse_page)):
        if pg is None:
            continue
        rows += test_csv_rows(rid, rec.fs)
        types.append(f"{rid},0001")
        cv2.imwrite(str(root / "test" / f"{rid}.png"), cv2.cvtColor(pg.image, cv2.COLOR_RGB2BGR))
        rec.to_competition_frame().to_csv(root / "test_truth" / f"{rid}.csv", index=False)
    import pandas as pd

    pd.DataFrame(rows).to_csv(root / "test.csv", index=False)
    (root / "test_truth" / "image_types.csv").write_text("id,image_type\n" + "\n".join(types) + "\n")


def test_competition_source_reads_realdev_layout(tmp_path, record_page):
    from ecgdigit.synth.render import NO_PULSE, RenderStyle
    from ecgdigit.training.data import CompetitionSource

    rec, _ = record_page
    page = _kit_page(rec)
    # the same record drawn without the pulse: its signal starts one square left of the labels' place
    shifted = render_page(rec, np.random.default_rng(1), NO_PULSE, RenderStyle(show_calibration=False))
    _realdev_layout_folder(tmp_path, rec, page, shifted)
    src = CompetitionSource(tmp_path)
    assert src.test_layout and len(src) == 2
    syn = src.load(0)
    assert syn is not None
    for a, b in zip(syn.page.traces, page.traces):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert src.load(1) is None  # the identity map would label the no-pulse page 39 px off: rejected


def test_tiny_run_with_realdev_layout_real_dir(tmp_path, record_page):
    from ecgdigit.training.cli import main

    rec, page = record_page
    _realdev_layout_folder(tmp_path / "real", rec, page)
    res = main(["--stage", "2", "--variant", "tiny", "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "run"),
                "--no-progress", "--workers", "0", "--real-dir", str(tmp_path / "real"), "--real-fraction", "1.0"])
    assert res[2].steps == 2 and (tmp_path / "run" / "stage2" / "checkpoint.pt").is_file()
