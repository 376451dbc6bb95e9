"""Shared test set-up: offline models, a throw-away cache folder, and a tiny fake encoder for fast tests."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

HASH_DIM = 64


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_encoder: runs the bundled MiniLM instead of the fake hashing encoder")


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Embeddings and checksums go to a fresh folder, never the user's cache."""
    folder = str(tmp_path_factory.mktemp("taxonomist-cache"))
    previous = os.environ.get("TAXONOMIST_CACHE_DIR")
    os.environ["TAXONOMIST_CACHE_DIR"] = folder
    yield folder
    if previous is None:
        os.environ.pop("TAXONOMIST_CACHE_DIR", None)
    else:
        os.environ["TAXONOMIST_CACHE_DIR"] = previous


@lru_cache(maxsize=None)
def _word_vector(word: str) -> tuple[int, float]:
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little") % HASH_DIM, 1.0 if digest[4] & 1 else -1.0


class HashingEncoder:
    """Bag of hashed words: deterministic, instant, and similar texts still land near each other."""

    identity = f"test:hashing{HASH_DIM}"
    dim = HASH_DIM

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), HASH_DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                column, sign = _word_vector(word)
                out[row, column] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, np.finfo(np.float32).tiny)


@pytest.fixture
def hashing_encoder(monkeypatch: pytest.MonkeyPatch) -> HashingEncoder:
    """Every encoder spec the classifier asks for becomes the hashing encoder."""
    encoder = HashingEncoder()
    monkeypatch.setattr("taxonomist.encoders.get_encoder", lambda spec, **_: encoder)
    return encoder


def write(tmp_path, name: str, content: str | bytes):
    """A fixture file in tmp_path, from text (UTF-8) or raw bytes."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def label_error(path):
    """The InputError that reading `path` as labels raises; every error must say how to fix it."""
    from taxonomist.errors import InputError
    from taxonomist.readers import read_labels

    with pytest.raises(InputError) as info:
        read_labels(path)
    assert info.value.fix, "every error says how to fix it"
    return info.value


def document_error(path, **options):
    """The InputError that reading all of `path` as documents raises; every error must say how to fix it."""
    from taxonomist.readers import read_documents
    from taxonomist.errors import InputError

    with pytest.raises(InputError) as info:
        list(read_documents(path, **options))
    assert info.value.fix, "every error says how to fix it"
    return info.value
