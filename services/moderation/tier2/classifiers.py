"""Tier 2 classifiers: text in, toxicity probability in [0, 1] out.

Detoxify's `unbiased` model when its weights are present locally (a configured checkpoint
path and the optional `detoxify` package); otherwise alt-profanity-check, whose trained
linear model ships inside the package. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class ModelUnavailable(RuntimeError):
    """The model cannot score right now; content stays unscored until it can."""


class Classifier(Protocol):
    name: str
    version: str

    def score(self, texts: list[str]) -> list[float]: ...


@dataclass
class ProfanityCheck:
    """alt-profanity-check: a linear SVM over TF-IDF, calibrated to probabilities."""

    name: str = "alt-profanity-check"
    version: str = ""

    def __post_init__(self) -> None:
        try:
            self._predict = importlib.import_module("profanity_check").predict_prob
            self.version = importlib.metadata.version("alt-profanity-check")
        except (ImportError, importlib.metadata.PackageNotFoundError) as error:
            raise ModelUnavailable(f"alt-profanity-check is not installed: {error}") from error

    def score(self, texts: list[str]) -> list[float]:
        return [float(p) for p in self._predict(texts)]


@dataclass
class Detoxify:
    """Detoxify `unbiased` from a local checkpoint (the `toxicity` head)."""

    checkpoint: Path
    name: str = "detoxify-unbiased"
    version: str = ""

    def __post_init__(self) -> None:
        if not self.checkpoint.is_file():
            raise ModelUnavailable(f"no Detoxify checkpoint at {self.checkpoint}")
        try:
            module: Any = importlib.import_module("detoxify")
        except ImportError as error:
            raise ModelUnavailable("the detoxify extra is not installed") from error
        self._model = module.Detoxify("unbiased", checkpoint=str(self.checkpoint), device="cpu")
        self.version = f"{importlib.metadata.version('detoxify')}:{self.checkpoint.name}"

    def score(self, texts: list[str]) -> list[float]:
        results = self._model.predict(texts)
        return [float(p) for p in results["toxicity"]]


def load_classifier(detoxify_checkpoint: Path | None) -> Classifier:
    """The best classifier available here; ModelUnavailable when there is none."""
    if detoxify_checkpoint is not None:
        return Detoxify(detoxify_checkpoint)
    return ProfanityCheck()
