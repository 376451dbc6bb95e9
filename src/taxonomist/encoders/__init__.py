"""Encoders turn texts into unit vectors; `get_encoder` picks one from a short spec string."""

from __future__ import annotations

import os
from pathlib import Path

from taxonomist.encoders.base import Encoder, default_cache_dir
from taxonomist.encoders.cache import CachedEncoder
from taxonomist.encoders.static import StaticEncoder, WordLlamaEncoder, is_model2vec_folder
from taxonomist.encoders.transformer import TransformerEncoder

__all__ = [
    "CachedEncoder",
    "Encoder",
    "StaticEncoder",
    "TransformerEncoder",
    "WordLlamaEncoder",
    "default_cache_dir",
    "get_encoder",
    "resolve",
]


def get_encoder(
    spec: str = "default", *, cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True
) -> Encoder:
    """"default"/"minilm" (bundled MiniLM); "static"/"wordllama" (wordllama's static token table);
    "model2vec" (a static model distilled from the bundled MiniLM on first use); a model2vec folder; or any
    sentence-transformers folder or locally cached model name.

    "static" is wordllama by measurement (bench/zero_shot.py): zero-shot P@1 35.7 vs 19.3 (foldoc) and
    43.2 vs 41.4 (WordNet) for the distilled model2vec, and faster (7.8k vs 6.4k docs/s).

    Static encoders skip the disk cache (`use_cache` applies to transformers): they encode about as fast
    as the cache reads and writes, and a whole zero-shot run over foldoc went 3.9k → 5.3k docs/s without it.
    """
    encoder: Encoder
    if spec in ("default", "minilm"):
        encoder = TransformerEncoder("default", cache_dir=cache_dir)
    elif spec == "model2vec":
        encoder = StaticEncoder("default", cache_dir=cache_dir)
    elif spec in ("static", "wordllama"):
        encoder = WordLlamaEncoder()
    elif Path(spec).is_dir() and is_model2vec_folder(spec):
        encoder = StaticEncoder(spec, cache_dir=cache_dir)
    else:
        encoder = TransformerEncoder(spec, cache_dir=cache_dir)
    return CachedEncoder(encoder, cache_dir) if use_cache and not getattr(encoder, "static", False) else encoder


def resolve(encoder: str | Encoder) -> Encoder:
    """An encoder object as it is; a spec through `get_encoder` (looked up here at call time, so that the one
    place a test replaces it is this module)."""
    return get_encoder(encoder) if isinstance(encoder, str) else encoder
