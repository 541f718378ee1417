"""Tier 2 classifiers: text in, toxicity probability in [0, 1] out.

Detoxify's `unbiased` model when its weights are present locally (a configured checkpoint
path, the base model's config and tokenizer files in a local directory, and the optional
`detoxify` package); otherwise alt-profanity-check, whose trained linear model ships inside
the package. Nothing is ever downloaded at run time.
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
    """Detoxify `unbiased` from a local checkpoint (its `toxicity` head), loaded offline.

    The checkpoint is in Detoxify's format: `{"config": {"arch": {"args": {"model_type",
    "model_name", "tokenizer_name", "num_classes"}}, "dataset": {"args": {"classes"}}},
    "state_dict"}`. It names its base model (`roberta-base` for `unbiased`), whose
    transformers config and tokenizer files come from `config_dir` (or else the local Hugging
    Face cache), never from the hub. detoxify's own loader (0.5) fetches the base model's
    config from the hub even when given a local config path, so the checkpoint is loaded here,
    the same way, with local files only; scoring is Detoxify's too (sigmoid of the logits).
    """

    checkpoint: Path
    config_dir: Path | None = None
    # Texts per forward pass: bounds the memory of one call whatever the number of texts.
    batch_size: int = 32
    name: str = "detoxify-unbiased"
    version: str = ""

    def __post_init__(self) -> None:
        if not self.checkpoint.is_file():
            raise ModelUnavailable(f"no Detoxify checkpoint at {self.checkpoint}")
        if self.config_dir is not None and not self.config_dir.is_dir():
            raise ModelUnavailable(f"no transformers config and tokenizer at {self.config_dir}")
        try:
            # The extra brings torch and transformers at versions detoxify works with.
            importlib.import_module("detoxify")
            self._torch: Any = importlib.import_module("torch")
            transformers: Any = importlib.import_module("transformers")
        except ImportError as error:
            raise ModelUnavailable("the ml extra (detoxify) is not installed") from error
        try:
            self._load(transformers)
        except (OSError, KeyError, ValueError, TypeError, AttributeError) as error:
            raise ModelUnavailable(
                f"the Detoxify checkpoint could not be loaded: {error}"
            ) from error
        # Recorded with every score and decision (64 characters at most).
        self.version = f"{importlib.metadata.version('detoxify')}:{self.checkpoint.name}"[:64]

    def _load(self, transformers: Any) -> None:
        # Not weights-only: Detoxify checkpoints carry their training config; the file is the
        # operator's own, as trusted as the code.
        loaded = self._torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        arch = loaded["config"]["arch"]["args"]
        classes = [_CLASS_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
        source = str(self.config_dir) if self.config_dir is not None else arch["model_type"]
        model_class = getattr(transformers, arch["model_name"])
        config = model_class.config_class.from_pretrained(
            source, num_labels=arch["num_classes"], local_files_only=True
        )
        self._model = model_class.from_pretrained(
            None, config=config, state_dict=loaded["state_dict"], local_files_only=True
        )
        self._model.eval()
        self._tokenizer = getattr(transformers, arch["tokenizer_name"]).from_pretrained(
            source, local_files_only=True
        )
        self._toxicity = classes.index("toxicity")
        # Longer texts are cut to what the position embeddings cover (RoBERTa reserves two).
        self._max_tokens = min(
            int(self._tokenizer.model_max_length), int(config.max_position_embeddings) - 2
        )

    def score(self, texts: list[str]) -> list[float]:
        scores: list[float] = []
        with self._torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                inputs = self._tokenizer(
                    texts[start : start + self.batch_size],
                    return_tensors="pt",
                    truncation=True,
                    max_length=self._max_tokens,
                    padding=True,
                )
                logits = self._model(**inputs).logits
                scores += self._torch.sigmoid(logits[:, self._toxicity]).tolist()
        return [float(p) for p in scores]


# Detoxify's names for the same classes across its models.
_CLASS_NAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}


def load_classifier(
    detoxify_checkpoint: Path | None, detoxify_config_dir: Path | None = None
) -> Classifier:
    """The best classifier available here; ModelUnavailable when there is none."""
    if detoxify_checkpoint is not None:
        return Detoxify(detoxify_checkpoint, config_dir=detoxify_config_dir)
    return ProfanityCheck()
