"""The Detoxify adapter's real loading and scoring, on a tiny model built here: a
Detoxify-format checkpoint, a transformers config and a tokenizer trained on a few
sentences. Nothing is downloaded; skipped where the `ml` extra is not installed."""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

# Before anything imports huggingface_hub (it reads this once).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("detoxify")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from services.moderation.resources import ModerationResources  # noqa: E402
from services.moderation.tier2.classifiers import (  # noqa: E402
    Detoxify,
    ModelUnavailable,
    load_classifier,
)
from services.moderation.worker import score_content  # noqa: E402
from tests.e2e.feed_helpers import post  # noqa: E402
from tests.factories import make_user  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

# The `unbiased` model's heads, toxicity first.
CLASSES = [
    "toxicity",
    "severe_toxicity",
    "obscene",
    "identity_attack",
    "insult",
    "threat",
    "sexual_explicit",
]
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
CORPUS = [
    "you are a lovely person and I like your post",
    "you idiot, nobody wants to read this garbage",
    "what a beautiful photo of the sea",
    "shut up, I hate you",
]
MAX_POSITIONS = 34  # 32 tokens per text, and RoBERTa's two reserved positions


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """No hub, and no network: every attempt to reach another host is recorded and refused."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    attempts: list[object] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def local(host: object) -> bool:
        return host in ("localhost", "127.0.0.1", "::1", None)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not local(host):
            attempts.append(host)
            raise socket.gaierror(f"no network in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not local(address[0]):
            attempts.append(address)
            raise OSError(f"no network in this test: {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], "the adapter tried to reach the network"


def build_tiny_detoxify(
    root: Path, *, model_type: str = "roberta-base", classes: list[str] = CLASSES
) -> tuple[Path, Path]:
    """A Detoxify `unbiased`-shaped checkpoint and the base model's files: (checkpoint, dir)."""
    config_dir = root / "roberta-base"
    config_dir.mkdir()
    trained = tokenizers.ByteLevelBPETokenizer()
    trained.train_from_iterator(
        CORPUS, vocab_size=400, min_frequency=1, special_tokens=SPECIAL_TOKENS
    )
    trained.save_model(str(config_dir))  # vocab.json and merges.txt, as roberta-base has them
    vocab = json.loads((config_dir / "vocab.json").read_text())
    config = transformers.RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=1,
        num_labels=len(classes),
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
    )
    config.save_pretrained(config_dir)
    torch.manual_seed(7)
    model = transformers.RobertaForSequenceClassification(config)
    checkpoint = root / "unbiased.ckpt"
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": model_type,
                        "model_name": "RobertaForSequenceClassification",
                        "tokenizer_name": "RobertaTokenizer",
                        "num_classes": len(classes),
                    }
                },
                "dataset": {"args": {"classes": classes}},
            },
            "state_dict": model.state_dict(),
        },
        checkpoint,
    )
    return checkpoint, config_dir


def test_a_local_checkpoint_loads_offline_and_scores_every_text(
    tmp_path: Path, offline: list[object]
) -> None:
    checkpoint, config_dir = build_tiny_detoxify(tmp_path)
    classifier = load_classifier(checkpoint, config_dir)
    assert isinstance(classifier, Detoxify)
    assert classifier.name == "detoxify-unbiased"
    assert classifier.version == f"{importlib.metadata.version('detoxify')}:unbiased.ckpt"

    texts = [
        "you idiot, nobody wants to read this garbage",
        "what a beautiful photo of the sea",
        "",
        "shut up " * 200,  # far longer than the model's positions: cut, not an error
        "ünïcödé and emoji 🙂 the tokenizer never saw",
    ]
    scores = classifier.score(texts)
    assert len(scores) == len(texts)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    # One text (what the worker sends) is a list of one, not a bare number.
    [single] = classifier.score([texts[0]])
    assert single == pytest.approx(scores[0], abs=1e-5)
    assert classifier.score([]) == []


def test_batches_give_the_same_scores_as_one_pass(tmp_path: Path, offline: list[object]) -> None:
    checkpoint, config_dir = build_tiny_detoxify(tmp_path)
    texts = [*CORPUS, "a fifth one", "and a sixth"]
    whole = Detoxify(checkpoint, config_dir=config_dir).score(texts)
    paired = Detoxify(checkpoint, config_dir=config_dir, batch_size=2).score(texts)
    assert paired == pytest.approx(whole, abs=1e-5)


def test_the_toxicity_head_is_found_by_name(tmp_path: Path, offline: list[object]) -> None:
    # The `original` model calls it "toxic", and it need not come first.
    classes = ["severe_toxic", "obscene", "toxic", "threat"]
    checkpoint, config_dir = build_tiny_detoxify(tmp_path, classes=classes)
    model = Detoxify(checkpoint, config_dir=config_dir)
    inputs = model._tokenizer(["you idiot"], return_tensors="pt")
    with torch.inference_mode():
        expected = torch.sigmoid(model._model(**inputs).logits[0, 2]).item()
    assert model.score(["you idiot"]) == [pytest.approx(expected, abs=1e-6)]


def test_without_the_base_models_files_nothing_is_fetched(
    tmp_path: Path, offline: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty Hugging Face cache: the base model is nowhere on this machine.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    checkpoint, _ = build_tiny_detoxify(tmp_path, model_type="zap-test/not-on-this-machine")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load_classifier(checkpoint)
    with pytest.raises(ModelUnavailable, match="config and tokenizer"):
        load_classifier(checkpoint, tmp_path / "missing")


def test_a_checkpoint_without_detoxifys_config_is_model_unavailable(
    tmp_path: Path, offline: list[object]
) -> None:
    _, config_dir = build_tiny_detoxify(tmp_path)
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {}}, bare)
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load_classifier(bare, config_dir)


async def test_its_name_and_version_are_recorded_with_the_score_and_the_decision(
    client: httpx.AsyncClient, stack: Stack, tmp_path: Path, offline: list[object]
) -> None:
    checkpoint, config_dir = build_tiny_detoxify(tmp_path)
    classifier = Detoxify(checkpoint, config_dir=config_dir)
    author = await make_user(client)
    written = await post(client, author, "you idiot, nobody wants to read this garbage")
    # Thresholds so low that whatever the tiny model says is a removal (a decision is logged).
    settings = stack.settings["moderation"].model_copy(
        update={"review_at": 0.001, "shadow_ban_at": 0.002, "remove_at": 0.003}
    )
    resources = ModerationResources.open(stack.platform, settings)  # type: ignore[arg-type]
    try:
        outcome = await score_content(
            {"resources": resources, "classifier": classifier},
            "post",
            written["id"],
            author.id,
            written["content"],
            2,  # the stack's own worker scores version 1 with its default model
        )
    finally:
        await resources.close()
    assert outcome == "remove"
    connection = await asyncpg.connect(stack.dsn("moderation"))
    try:
        score = await connection.fetchrow(
            "SELECT score, model, model_version FROM scores"
            " WHERE content_id = $1::uuid AND version = 2",
            written["id"],
        )
        decision = await connection.fetchrow(
            "SELECT action, model, model_version FROM decisions WHERE content_id = $1::uuid"
            " AND model = $2",
            written["id"],
            classifier.name,
        )
    finally:
        await connection.close()
    assert score is not None
    assert 0.0 <= score["score"] <= 1.0
    assert (score["model"], score["model_version"]) == (classifier.name, classifier.version)
    assert decision is not None
    assert (decision["action"], decision["model_version"]) == ("remove", classifier.version)
