"""Stage models (tiny presets): output heads and strides, fp16 weights round trip, manifest, errors."""
import json
import math
import socket

import pytest
import timm
import torch

from ecgdigit.models import encoder_decoder
from ecgdigit.models.encoder_decoder import EncoderDecoder, HeadSpec
from ecgdigit.models.stage_models import STAGES, ModelConfig, build_model, count_parameters
from ecgdigit.models.weights_io import (MANIFEST_NAME, WeightsError, load_stage_model, load_weights,
                                        read_manifest, save_weights, sha256_file)
from ecgdigit.training import tasks
from ecgdigit.training.tasks import preset

H, W = 64, 96


def _tiny(stage: int, seed: int = 0):
    torch.manual_seed(seed)
    cfg = preset(stage, "tiny")
    model = build_model(cfg)
    # Non-trivial BN statistics, so the round trip covers buffers too.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval(), cfg


def _x(b: int = 2, h: int = H, w: int = W, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("stage", STAGES)
def test_tiny_outputs_match_heads(stage):
    model, cfg = _tiny(stage)
    with torch.no_grad():
        out = model(_x())
    assert set(out) == set(cfg.heads)
    for name, spec in cfg.heads.items():
        y = out[name]
        assert y.dtype == torch.float32 and torch.isfinite(y).all()
        if spec.kind == "classify":
            assert y.shape == (2, spec.channels)
        else:
            s = model.output_strides[name]
            assert s == cfg.decoder_out_stride
            assert y.shape == (2, spec.channels, H // s, W // s)


def test_stage_heads_are_as_designed():
    s0, s1, s2 = (preset(s, "tiny") for s in STAGES)
    assert s0.heads["orientation"] == HeadSpec("classify", 4, tasks.ORIENTATION_CLASSES)
    assert s0.heads["keypoints"].kind == "dense" and s0.heads["keypoints"].channels == 16
    assert set(s1.heads) == {"gridpoints", "gridlines"} and s1.heads["gridlines"].channels == 2
    assert s2.heads["traces"].channels == 4 and s2.decoder_out_stride == 1
    # tiny keeps the real presets' heads and strides, so the tests exercise the real layout
    for s in STAGES:
        real, tiny = preset(s), preset(s, "tiny")
        assert real.heads == tiny.heads and real.decoder_out_stride == tiny.decoder_out_stride


def test_odd_sizes_strides_and_upsampling():
    heads = {"m": HeadSpec("dense", 3), "c": HeadSpec("classify", 5)}
    h, w = 50, 70  # not multiples of 32: padded inside, cropped back
    for stride in (1, 2, 4):
        n = int(math.log2(32 // stride))
        m = EncoderDecoder("test_efficientnet", heads, decoder_channels=(8,) * n,
                           decoder_out_stride=stride).eval()
        with torch.no_grad():
            out = m(_x(1, h, w))
        assert out["m"].shape == (1, 3, -(-h // stride), -(-w // stride))
        assert out["c"].shape == (1, 5)
    m = EncoderDecoder("test_efficientnet", heads, decoder_channels=(8,) * 4, upsample_to_input=True).eval()
    with torch.no_grad():
        assert m(_x(1, h, w))["m"].shape == (1, 3, h, w)
    assert m.output_strides == {"m": 1, "c": None}


def test_bad_architectures_raise():
    with pytest.raises(ValueError, match="kind"):
        HeadSpec("boxes", 2)
    with pytest.raises(ValueError, match="names"):
        HeadSpec("dense", 2, ("a",))
    with pytest.raises(ValueError, match="decoder_channels"):
        EncoderDecoder("test_efficientnet", {"m": HeadSpec("dense", 1)}, decoder_channels=(8, 8, 8, 8),
                       decoder_out_stride=1)
    with pytest.raises(ValueError, match="stage"):
        preset(3)
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({**preset(0, "tiny").to_dict(), "frobnicate": 1})


def test_normalization_is_inside_and_not_a_weight():
    model, _ = _tiny(0)
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()
    assert torch.allclose(model.mean.flatten(), torch.tensor(encoder_decoder.IMAGENET_MEAN))
    # an image of exactly the mean colour reaches the encoder as zeros
    seen = {}
    model.encoder.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        model(model.mean.expand(1, 3, H, W).clone())
    assert seen["x"].abs().max() < 1e-6


def test_config_json_round_trip():
    for s in STAGES:
        for variant in tasks.VARIANTS:
            cfg = preset(s, variant)
            assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_count_parameters():
    model, _ = _tiny(1)
    total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters()) and total > 0
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    trainable = count_parameters(model, trainable_only=True)
    assert 0 < trainable < total


def test_no_network_and_never_pretrained(monkeypatch):
    calls = []
    real_create = timm.create_model

    def spy(*args, **kwargs):
        calls.append(kwargs.get("pretrained"))
        return real_create(*args, **kwargs)

    def no_connect(*args, **kwargs):
        raise AssertionError("a model build tried to use the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(encoder_decoder.timm, "create_model", spy)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    for s in STAGES:
        for variant in tasks.VARIANTS:
            build_model(preset(s, variant))
    assert calls == [False] * (len(STAGES) * len(tasks.VARIANTS))


@pytest.mark.parametrize("stage", STAGES)
def test_save_load_round_trip(tmp_path, stage):
    model, cfg = _tiny(stage, seed=stage)
    x = _x()
    with torch.no_grad():
        ref = model(x)
    training = {"command": "python -m train", "steps": 10, "data": "synth", "holdout": {"snr_db": 1.5}}
    rec = save_weights(model, tmp_path / f"stage{stage}.v1", {"training": training, "note": "test"})
    f = tmp_path / f"stage{stage}.v1.safetensors"
    assert f.is_file() and rec["file"] == f.name

    # manifest: hash, size and architecture describe the file
    entry = read_manifest(tmp_path)["weights"][f.name]
    assert entry["sha256"] == sha256_file(f) and entry["size_bytes"] == f.stat().st_size
    assert entry["stage"] == stage and ModelConfig.from_dict(entry["architecture"]) == cfg
    assert entry["input_size"] == list(cfg.input_size)
    assert entry["training"] == training and entry["note"] == "test"
    # fp16 on disk: about 2 bytes per parameter
    assert f.stat().st_size < 2.3 * count_parameters(model) + 60_000

    fresh = build_model(cfg).eval()
    load_weights(fresh, f, expected_sha256=entry["sha256"])
    assert all(p.dtype == torch.float32 for p in fresh.parameters())
    with torch.no_grad():
        got = fresh(x)
    for k in ref:
        assert torch.allclose(got[k], ref[k], rtol=2e-2, atol=2e-2 * ref[k].abs().max().item()), k
        assert not torch.equal(got[k], build_model(cfg).eval()(x)[k])  # weights really were loaded

    loaded = load_stage_model(stage, tmp_path)
    assert loaded is not None
    m2, cfg2 = loaded
    assert cfg2 == cfg and not m2.training
    with torch.no_grad():
        assert all(torch.equal(m2(x)[k], got[k]) for k in got)  # same file -> identical outputs


def test_load_into_other_dtype(tmp_path):
    model, cfg = _tiny(2)
    save_weights(model, tmp_path / "w")
    m64 = build_model(cfg).to(torch.float64)
    load_weights(m64, tmp_path / "w")
    assert all(p.dtype == torch.float64 for p in m64.parameters())
    p16 = {k: v.half().double() for k, v in model.state_dict().items() if v.is_floating_point()}
    s64 = m64.state_dict()
    assert all(torch.equal(s64[k], v) for k, v in p16.items())


def test_manifest_keeps_other_entries(tmp_path):
    m0, _ = _tiny(0)
    m1, _ = _tiny(1)
    save_weights(m0, tmp_path / "a")
    save_weights(m1, tmp_path / "b")
    save_weights(m0, tmp_path / "a")  # overwrite updates, does not duplicate
    entries = read_manifest(tmp_path)["weights"]
    assert sorted(entries) == ["a.safetensors", "b.safetensors"]
    assert load_stage_model(2, tmp_path) is None
    assert load_stage_model(0, tmp_path / "nowhere") is None


def test_weights_errors_name_the_file(tmp_path):
    model, cfg = _tiny(0)
    rec = save_weights(model, tmp_path / "s0")
    f = tmp_path / "s0.safetensors"

    with pytest.raises(WeightsError, match="missing.safetensors"):
        load_weights(model, tmp_path / "missing")
    wrong = "0" * 64
    with pytest.raises(WeightsError) as e:
        load_weights(model, f, expected_sha256=wrong)
    assert "s0.safetensors" in str(e.value) and wrong in str(e.value) and rec["sha256"] in str(e.value)

    # weights of another architecture
    with pytest.raises(WeightsError, match="s0.safetensors.*does not fit"):
        load_weights(build_model(preset(1, "tiny")), f)

    # a corrupted file: load_stage_model's hash check catches it
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="s0.safetensors.*sha256"):
        load_stage_model(0, tmp_path)
    with pytest.raises(WeightsError, match="s0.safetensors"):
        load_weights(model, f)  # no hash given: unreadable file

    # the manifest points at a file that is gone
    f.unlink()
    with pytest.raises(WeightsError, match="not found.*s0.safetensors"):
        load_stage_model(0, tmp_path)

    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(WeightsError, match=MANIFEST_NAME):
        load_stage_model(0, tmp_path)


def test_save_refuses_non_fp16_values(tmp_path):
    model, _ = _tiny(2)
    with torch.no_grad():
        next(model.parameters())[0] = 1e6
    with pytest.raises(WeightsError, match="fp16"):
        save_weights(model, tmp_path / "big")
    assert not (tmp_path / "big.safetensors").exists() and not (tmp_path / MANIFEST_NAME).exists()
