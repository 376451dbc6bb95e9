"""Static (token-table) encoders: a hundred times faster than a transformer, somewhat less accurate."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from taxonomist.encoders.base import check_texts, l2_normalize, resolve_cache_dir
from taxonomist.encoders.pieces import PieceTokenizer
from taxonomist.encoders.transformer import (
    DEFAULT_ALIASES,
    DEFAULT_THREADS,
    _folder_digest,
    _resolve_model,
    torch_threads,
)
from taxonomist.errors import ModelError

DISTILL_SETTINGS = {"pca_dims": 256}
_BATCH = 1024


def is_model2vec_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder saved by model2vec (its config.json says so), whatever else it holds."""
    config = Path(path) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (
        data.get("model_type") == "model2vec" or "StaticModel" in (data.get("architectures") or [])
    )


class StaticEncoder:
    """model2vec: a model2vec folder loaded as is, or a sentence-transformers model distilled once.

    Distilling (`source` = "default", a model folder or a cached model name) takes about a minute;
    the result is kept in `cache_dir/static/<hash of the source model and settings>/` and loaded
    from there afterwards.
    """

    static = True  # a token table, no context: see Classifier's self-training gate

    def __init__(
        self, source: str | os.PathLike[str] = "default", *, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        from model2vec import StaticModel

        cache = resolve_cache_dir(cache_dir)
        source = str(source)
        if source not in DEFAULT_ALIASES and is_model2vec_folder(source):
            folder = Path(source)
        else:
            folder = _distilled(source, cache)
        self.model_path = folder
        try:
            self._model = StaticModel.from_pretrained(folder)
        except Exception as error:  # model2vec raises many types; all mean "not a usable model"
            raise ModelError(
                f"cannot load a model2vec model: {error}",
                where=str(folder),
                fix="delete this folder to distill it again, or pass another model2vec folder",
            ) from error
        self._table = np.asarray(self._model.embedding, dtype=np.float32)
        self._pieces = PieceTokenizer(self._model.tokenizer)
        self.dim = int(self._model.dim)
        self.identity = f"model2vec:{folder.name}@sha256:{_folder_digest(folder, cache)}|pool=float32"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        # model2vec's own encode loops in Python per length bucket; a sparse (texts × vocabulary) matrix
        # product with the token table gives the same mean ~2× faster. Like model2vec, it reads the first
        # 512 tokens (the tokenizer's truncation).
        model = self._model
        return pooled_token_vectors(
            self._pieces, self._table, check_texts(texts), show_progress,
            mapping=model.token_mapping, weights=model.weights, skip_id=model.unk_token_id,
        )


def _distilled(source: str, cache: Path) -> Path:
    """The cached distillation of a sentence-transformers model, made (atomically) if missing."""
    model_folder, name, version = _resolve_model(source, cache)
    key = json.dumps({"source": version, **DISTILL_SETTINGS}, sort_keys=True)
    folder = cache / "static" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (folder / "config.json").is_file():
        return folder
    from model2vec.distill import distill

    print(f"taxonomist: distilling a static encoder from {name} (once, ~1 min) into {folder}", file=sys.stderr)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        try:
            with torch_threads(DEFAULT_THREADS):
                distill(str(model_folder), **DISTILL_SETTINGS).save_pretrained(staging)
        except Exception as error:  # model2vec raises many types; all mean "cannot distill this model"
            raise ModelError(
                f"cannot distill a static encoder from {name}: {error}",
                where=str(model_folder),
                fix="use another sentence-transformers model, or the 'wordllama' static encoder",
            ) from error
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "config.json").is_file():  # not a rival process that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


class WordLlamaEncoder:
    """WordLlama's static token table (Llama-2 tokenizer, weights shipped in the wheel), mean-pooled.

    Reads the package's files directly rather than importing it: its import configures the root
    logger, and its loader looks for the tokenizer in a folder the wheel does not have.
    `dim` below 256 keeps the leading (Matryoshka) dimensions.
    """

    static = True  # a token table, no context: see Classifier's self-training gate

    DIMS = (64, 128, 256)

    def __init__(self, dim: int = 256) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        if dim not in self.DIMS:
            raise ModelError(f"wordllama has no {dim}-dimensional model", where="dim", fix=f"pass one of {self.DIMS}")
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("the wordllama package is not installed", fix="pip install wordllama==0.4.0.post1")
        package = Path(next(iter(spec.submodule_search_locations)))
        weights = package / "weights" / "l2_supercat_256.safetensors"
        tokenizer = package / "tokenizers" / "l2_supercat_tokenizer_config.json"
        for path in (weights, tokenizer):
            if not path.is_file():
                raise ModelError(
                    "a file of the wordllama package is missing",
                    where=str(path),
                    fix="pip install --force-reinstall wordllama==0.4.0.post1",
                )
        with safe_open(str(weights), framework="np") as f:
            self._table = np.ascontiguousarray(f.get_tensor("embedding.weight")[:, :dim], dtype=np.float32)
        tokenizer = Tokenizer.from_file(str(tokenizer))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._pieces = PieceTokenizer(tokenizer)
        self.dim = dim
        version = importlib.metadata.version("wordllama")
        self.identity = f"wordllama:l2_supercat_256@{version}|dim={dim}"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return pooled_token_vectors(self._pieces, self._table, check_texts(texts), show_progress)


def pooled_token_vectors(
    pieces: PieceTokenizer,
    table: np.ndarray,
    texts: list[str],
    show_progress: bool,
    *,
    mapping: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    skip_id: int | None = None,
) -> np.ndarray:
    """Mean of each text's token vectors (optionally re-mapped and weighted), L2-normalised; a text with
    no known token gives a zero row. Tokens come from `pieces` (memoised: the tokenizer on whole texts
    was 85% of the time)."""
    from scipy.sparse import csr_matrix
    from tqdm.auto import tqdm

    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    n_tokens = len(mapping) if mapping is not None else table.shape[0]
    for start in tqdm(range(0, len(texts), _BATCH), unit="batch", desc="encoding", disable=not show_progress):
        batch = texts[start : start + _BATCH]
        tokens, indptr = pieces.encode(batch)
        if skip_id is not None:
            kept = tokens != skip_id
            indptr = np.concatenate([[0], np.cumsum(kept)])[indptr]
            tokens = tokens[kept]
        tokens = np.clip(tokens, 0, n_tokens - 1)
        data = weights[tokens].astype(np.float32) if weights is not None else np.ones(len(tokens), np.float32)
        columns = mapping[tokens] if mapping is not None else tokens
        rows = csr_matrix((data, columns, indptr), shape=(len(batch), table.shape[0]))
        out[start : start + len(batch)] = rows @ table  # sums; the mean's scale vanishes on normalising
    return l2_normalize(out)
