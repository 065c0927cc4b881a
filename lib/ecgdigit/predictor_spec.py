"""What the submission run predicts with: the Predictor protocol, and a small picklable description
of one (PredictorSpec, a PredictorFactory): each worker process builds its own predictor from it,
after the fallback submission exists.

kind: "pipeline" (Pipeline.load: the shipped weights, a stage whose model cannot be loaded runs
classical, loudly), "classical" (no weights), "zeros" (Digitized.fallback, no weights; the notebook
tests use it) or "zeros:<seconds>" (the same, that slow per image: exercises deadlines).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from .digitized import Digitized
from .pipeline import Pipeline

PREDICTOR_ENV = "ECGDIGIT_PREDICTOR"
STRICT_WEIGHTS_ENV = "ECGDIGIT_STRICT_WEIGHTS"
PREDICTOR_CHOICES = ("pipeline", "classical", "zeros", "zeros:<seconds per image>")


@runtime_checkable
class Predictor(Protocol):
    """What the runner predicts with (ecgdigit.pipeline.Pipeline is one; as_predictor makes one of a
    plain function image -> Digitized)."""

    def predict(self, image: np.ndarray) -> Digitized: ...

    def predict_many(self, images: list[np.ndarray]) -> list[Digitized | Exception]:
        """predict() for each image, in order; an image that fails gets its exception in its slot."""
        ...


@dataclass(frozen=True)
class FunctionPredictor:
    """A function image -> Digitized as a Predictor; predict_many runs it one image at a time."""

    fn: Callable[[np.ndarray], Digitized]

    def predict(self, image: np.ndarray) -> Digitized:
        return self.fn(image)

    def predict_many(self, images: list[np.ndarray]) -> list[Digitized | Exception]:
        out: list[Digitized | Exception] = []
        for image in images:
            try:
                out.append(self.fn(image))
            except Exception as exc:  # this image only
                out.append(exc)
        return out


def as_predictor(predictor: Predictor | Callable[[np.ndarray], Digitized]) -> Predictor:
    if isinstance(predictor, Predictor):
        return predictor
    if callable(predictor):
        return FunctionPredictor(predictor)
    raise TypeError(f"not a predictor (predict/predict_many, or a function image -> Digitized): {predictor!r}")


def zeros_predictor(image_rgb: np.ndarray) -> Digitized:
    """The documented no-weights predictor: every lead zero (what a fallback record holds)."""
    return Digitized.fallback("predictor=zeros")


@dataclass(frozen=True)
class _SlowZeros:
    """zeros_predictor after sleeping `seconds` (a class, not a closure: it must pickle)."""

    seconds: float

    def __call__(self, image_rgb: np.ndarray) -> Digitized:
        time.sleep(self.seconds)
        return zeros_predictor(image_rgb)


@dataclass
class LoadedPredictor:
    predictor: Predictor  # a function image -> Digitized is wrapped (as_predictor)
    warnings: list[str] = field(default_factory=list)  # e.g. a stage left classical: for the run report

    def __post_init__(self) -> None:
        self.predictor = as_predictor(self.predictor)


@runtime_checkable
class PredictorFactory(Protocol):
    """A picklable description each worker process builds its predictor from (PredictorSpec)."""

    def load(self) -> LoadedPredictor: ...


def is_factory(predictor) -> bool:
    """A PredictorFactory that is not itself a predictor (Pipeline has a load classmethod, and predicts
    where it is)."""
    return (isinstance(predictor, PredictorFactory) and not isinstance(predictor, Predictor)
            and not callable(predictor))


@dataclass(frozen=True)
class PredictorSpec:
    kind: str = "pipeline"
    weights_dir: str | None = None
    device: str | None = None
    strict_weights: bool = False  # a model that cannot be loaded stops the run (StageLoadError)

    @classmethod
    def from_env(cls, **overrides) -> "PredictorSpec":
        """$ECGDIGIT_PREDICTOR (default pipeline) and $ECGDIGIT_STRICT_WEIGHTS (1/true/yes)."""
        kind = os.environ.get(PREDICTOR_ENV, "pipeline").strip().lower() or "pipeline"
        strict = os.environ.get(STRICT_WEIGHTS_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(**{"kind": kind, "strict_weights": strict, **overrides})

    def check(self) -> None:
        """ValueError for a kind that cannot be built (before any worker is started for it)."""
        if self.kind in ("pipeline", "classical", "zeros"):
            return
        if self.kind.startswith("zeros:"):
            try:
                float(self.kind.split(":", 1)[1])
                return
            except ValueError:
                raise ValueError(f"{PREDICTOR_ENV}={self.kind!r}: expected zeros:<seconds per image>") from None
        raise ValueError(f"{PREDICTOR_ENV}={self.kind!r}: expected one of {PREDICTOR_CHOICES}")

    def load(self) -> LoadedPredictor:
        self.check()
        if self.kind == "zeros":
            return LoadedPredictor(zeros_predictor)
        if self.kind.startswith("zeros:"):
            return LoadedPredictor(_SlowZeros(float(self.kind.split(":", 1)[1])))
        if self.kind == "classical":
            return LoadedPredictor(Pipeline())
        pipeline = Pipeline.load(self.weights_dir, self.device, strict_weights=self.strict_weights)
        return LoadedPredictor(pipeline, [f.message() for f in pipeline.load_failures])
