"""Batched prediction: Pipeline.predict_many and the runner's batch_size give the same results as one
image at a time (tiny untrained stage-0 model, CPU)."""
from __future__ import annotations


import numpy as np
import pytest

from ecgdigit.digitized import Digitized
from ecgdigit.pipeline import Pipeline, UnreadableImage
from ecgdigit.runner import predict_records, run_submission


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    import torch

    from ecgdigit.models.stage_models import build_model
    from ecgdigit.models.weights_io import save_weights
    from ecgdigit.training.tasks import get_task, preset

    wdir = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    save_weights(build_model(preset(0, "tiny")), wdir / "stage0_tiny", get_task(0).manifest_fields())
    p = Pipeline.load(wdir, device="cpu", stage2_scale=1.0)  # reading at half scale: a faster test
    assert hasattr(p.models.orientation, "many")  # the batched form is there to be used
    return p


def test_predict_many_matches_predict(pipeline):
    from ecgdigit.synth.generate import make_image, random_record

    rng = np.random.default_rng(3)
    images = [make_image(random_record(rng, str(i)), "0001", rng, max_side=1000).image for i in range(2)]
    images.insert(1, np.full((600, 800, 3), 255, np.uint8))  # blank: unreadable, between the two
    assert len({im.shape for im in images}) > 1  # orientation batching must cope with unequal sizes

    many = pipeline.predict_many(images)
    assert len(many) == len(images)
    assert isinstance(many[1], UnreadableImage)
    for i, image in enumerate(images):
        if i == 1:
            with pytest.raises(UnreadableImage):
                pipeline.predict(image)
            continue
        one = pipeline.predict(image)
        assert isinstance(many[i], Digitized), many[i]
        assert many[i].fs == one.fs
        np.testing.assert_array_equal(many[i].signals, one.signals)
    # the batched orientations are the per-image ones
    ok = [im for i, im in enumerate(images) if i != 1]
    assert pipeline.models.orientation.many(ok) == [pipeline.models.orientation(im) for im in ok]


def test_run_submission_batch_size_2_writes_the_same_file(pipeline, tmp_path):
    from ecgdigit.synth.competition_writer import WriterOptions, write_competition

    root = tmp_path / "comp"
    write_competition(root, WriterOptions(n_train=0, n_test=3, test_types=("0001",), max_side=1000),
                      progress=False)
    one = run_submission(root, tmp_path / "one.csv", predictor=pipeline.predict, progress=False)
    two = run_submission(root, tmp_path / "two.csv", predictor=pipeline, batch_size=2, progress=False)
    assert one.n_predicted == two.n_predicted == 3
    assert one.failures == two.failures
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


class _Stub:
    """predict / predict_many with a per-image failure, counting batch calls."""

    def __init__(self):
        self.batches: list[int] = []

    def predict(self, image: np.ndarray) -> Digitized:
        if image.mean() < 1:  # the black image fails
            raise UnreadableImage("black")
        return Digitized(np.full((5000, 12), float(image.mean()), np.float32), 500.0)

    def predict_many(self, images):
        self.batches.append(len(images))
        out = []
        for im in images:
            try:
                out.append(self.predict(im))
            except Exception as exc:
                out.append(exc)
        return out


class _Folder:
    def __init__(self, images: dict):
        self.images = images

    def test_image(self, image_id: str) -> np.ndarray:
        if self.images[image_id] is None:
            raise OSError(f"{image_id}.png: cannot decode")
        return self.images[image_id]


def test_predict_records_batches_keep_per_image_failures():
    import pandas as pd

    from ecgdigit import config

    vals = {"a": 10, "b": 0, "c": None, "d": 30, "e": 40}
    images = {k: (None if v is None else np.full((8, 8, 3), v, np.uint8)) for k, v in vals.items()}
    rows = [(i, lead, 500, config.number_of_rows(lead, 500)) for i in vals for lead in config.LEADS]
    test_df = pd.DataFrame(rows, columns=["id", "lead", "fs", "number_of_rows"])
    stub = _Stub()
    single = predict_records(_Folder(images), stub.predict, test_df=test_df, progress=False)
    batched = predict_records(_Folder(images), stub, test_df=test_df, progress=False, batch_size=2, limit=4)
    assert stub.batches == [2, 1]  # a, b | (c unreadable) d | the limit stops before e
    assert sorted(batched.predictions) == ["a", "d"]
    for i in batched.predictions:
        for lead, v in batched.predictions[i].items():
            np.testing.assert_array_equal(v, single.predictions[i][lead])
    reasons = dict(batched.failures)
    assert reasons["b"].startswith("predictor error: UnreadableImage") and reasons["b"] == dict(single.failures)["b"]
    assert reasons["c"].startswith("unreadable image") and reasons["e"] == "skipped: limit"
    # a deadline already passed: nothing is started, every image is named
    late = predict_records(_Folder(images), stub, test_df=test_df, progress=False, batch_size=2, stop_at=0.0)
    assert late.stopped_by_deadline and not late.predictions
    assert [i for i, _ in late.failures] == list(vals)
