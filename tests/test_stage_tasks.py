"""The stage tasks' table, the training configs' table, and the layering they keep: the pipeline's
models load from their manifest entry alone, never from training/ or synth/."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ecgdigit.config import paths
from ecgdigit.models.stage_callables import StageModels
from ecgdigit.models.stage_loading import StageLoadError, load_stage_models
from ecgdigit.models.stage_models import STAGES, build_model
from ecgdigit.models.weights_io import save_weights
from ecgdigit.training import tasks
from ecgdigit.training.configs import TRAIN_CONFIGS, TRAIN_VARIANTS, stage_config

LIB = Path(__file__).resolve().parents[1] / "lib"


def test_every_stage_has_one_task_and_every_variant_one_config():
    assert sorted(tasks.TASKS) == list(STAGES)
    assert set(TRAIN_CONFIGS) == {(s, v) for s in STAGES for v in TRAIN_VARIANTS}
    for (s, v), cfg in TRAIN_CONFIGS.items():
        assert (cfg.stage, cfg.variant, cfg.model.stage) == (s, v, s)
        # a config's model has its task's heads and output stride, whatever the variant shrinks
        assert cfg.model.heads == tasks.get_task(s).heads
        assert cfg.model.decoder_out_stride == tasks.get_task(s).out_stride
        assert set(tasks.get_task(s).loss_weights) == set(cfg.model.heads)
    with pytest.raises(ValueError, match="already has a task"):
        tasks.register_task(tasks.get_task(0))
    with pytest.raises(ValueError, match="stage"):
        tasks.get_task(3)
    with pytest.raises(ValueError, match="stage"):
        stage_config(3, "tiny")
    with pytest.raises(ValueError, match="variant"):
        stage_config(0, "huge")


def test_models_and_pipeline_import_neither_training_nor_synth():
    code = ("import sys; import ecgdigit.models.inference, ecgdigit.models.stage_loading, ecgdigit.pipeline, "
            "ecgdigit.runner; print([m for m in sys.modules if m.startswith(('ecgdigit.training', "
            "'ecgdigit.synth'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(LIB), "PATH": ""})
    assert out.stdout.strip() == "[]", out.stdout


def test_shipped_stage0_entry_holds_the_layouts_key_points():
    """Inference fits its homography to the manifest's positions: they must be the ones the model
    learnt, i.e. what the trainer computes from the page layout today (else re-save the manifest)."""
    manifest = json.loads((paths().weights / "manifest.json").read_text())
    entries = [e for e in manifest["weights"].values() if e.get("stage") == 0]
    assert entries, "the kit ships a stage-0 model"
    for e in entries:
        assert e["reference_keypoints"] == tasks.reference_keypoints()["reference_keypoints"]
        assert list(e["reference_keypoints"]) == list(e["architecture"]["heads"]["keypoints"]["names"])


def test_stage0_weights_without_key_points_leave_stage0_classical(tmp_path, caplog):
    torch.manual_seed(0)
    save_weights(build_model(tasks.preset(0, "tiny")), tmp_path / "stage0_tiny")  # no task fields
    with caplog.at_level(logging.WARNING):
        models, failures = load_stage_models(tmp_path, "cpu")
    assert models == StageModels() and [f.stage for f in failures] == [0]
    assert "reference_keypoints" in failures[0].error and "MODEL NOT LOADED" in caplog.text
    with pytest.raises(StageLoadError, match="reference_keypoints"):
        load_stage_models(tmp_path, "cpu", strict=True)

    save_weights(build_model(tasks.preset(0, "tiny")), tmp_path / "stage0_tiny", tasks.get_task(0).manifest_fields())
    models, failures = load_stage_models(tmp_path, "cpu")
    assert failures == [] and models.names() == ["keypoints", "orientation"]
