"""The embedded sample is rebuilt when the generator that drew it changed, reused otherwise."""
from ecgdigit.synth import embedded_sample


def test_sample_is_rebuilt_when_the_generator_version_changes(tmp_path, monkeypatch):
    calls = []

    def fake_write(root, opts, progress=True):
        root.mkdir(parents=True, exist_ok=True)
        (root / "drawn_by.txt").write_text(str(embedded_sample.SYNTH_VERSION))
        calls.append(root)

    monkeypatch.setattr(embedded_sample, "write_competition", fake_write)
    root = tmp_path / "sample"
    embedded_sample.ensure_embedded_sample(root, progress=False)
    embedded_sample.ensure_embedded_sample(root, progress=False)
    assert len(calls) == 1  # same generator: reused
    monkeypatch.setattr(embedded_sample, "SYNTH_VERSION", embedded_sample.SYNTH_VERSION + 1)
    embedded_sample.ensure_embedded_sample(root, progress=False)
    assert len(calls) == 2
    assert (root / "drawn_by.txt").read_text() == str(embedded_sample.SYNTH_VERSION)
