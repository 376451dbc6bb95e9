"""What every encoder promises, and the helpers they share (cache folder, normalisation, file hashes)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import platformdirs

from taxonomist.atomic import atomic_write
from taxonomist.errors import InputError

CACHE_ENV = "TAXONOMIST_CACHE_DIR"


@runtime_checkable
class Encoder(Protocol):
    """Texts in, unit-length float32 rows out.

    `identity` names everything that changes the vectors (model, weights checksum, settings), so
    that caches and saved models can tell two encoders apart; `dim` is the row length.
    """

    identity: str
    dim: int

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


def default_cache_dir() -> Path:
    """The user's cache folder for taxonomist; $TAXONOMIST_CACHE_DIR overrides it."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("taxonomist"))


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32; an all-zero row (e.g. an empty text) stays zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def check_texts(texts: Sequence[str]) -> list[str]:
    """A list of strings, or an InputError naming the first item that is not one."""
    if isinstance(texts, str):
        raise InputError("expected a sequence of texts, got one string", fix="pass [text] to encode one text")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(
                f"text {i} is a {type(text).__name__}, not a string", where=f"texts[{i}]", fix="pass strings only"
            )
    return texts


def file_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of a (large) file, computed once per file version and remembered by path, size, mtime, ctime and
    inode. mtime alone can be set back after a change (os.utime, touch -d), which would hide corruption from
    the bundled model's checksum; ctime cannot, and any write or utime moves it. A replaced file has a new inode.
    """
    path = path.resolve()
    stat = path.stat()
    memo_file = cache_dir / "checksums.json"
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo, dict) and isinstance(memo.get(key), str):
        return memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    memo = memo if isinstance(memo, dict) else {}
    memo[key] = digest.hexdigest()
    with contextlib.suppress(InputError):  # a read-only cache only costs hashing again next time
        atomic_write(memo_file, json.dumps(memo, indent=1, sort_keys=True), parents=True)
    return memo[key]
