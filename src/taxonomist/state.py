"""One part's saved state in its own folder: plain values in state.json, arrays in arrays.npz (CSR matrices as
their three arrays and shape). No pickle: a model folder can be read without running code from it. Each part
chooses the names of what it saves, so renaming an attribute never changes the file format."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from .errors import ModelError

T = TypeVar("T")
PLAIN = (int, float, str, bool, type(None), tuple, list, dict)
_CSR = "@csr."


def write_state(folder: Path, **values: Any) -> None:
    """Plain values, numpy arrays and sparse matrices, by name."""
    plain: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif sp.issparse(value):
            csr = value.tocsr()
            for field in ("data", "indices", "indptr"):
                arrays[f"{name}{_CSR}{field}"] = getattr(csr, field)
            arrays[f"{name}{_CSR}shape"] = np.asarray(csr.shape)
        elif isinstance(value, PLAIN):
            plain[name] = value
        else:
            raise TypeError(f"cannot save {name} of type {type(value).__name__}")
    (folder / "state.json").write_text(json.dumps(plain, ensure_ascii=False), encoding="utf-8")
    if arrays:
        with open(folder / "arrays.npz", "wb") as handle:
            np.savez(handle, **arrays)


def read_state(folder: Path) -> dict[str, Any]:
    """What write_state wrote; lists come back as lists (the part knows which are tuples)."""
    try:
        values = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        if (folder / "arrays.npz").exists():
            with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
                stored = {key: npz[key] for key in npz.files}
        else:
            stored = {}
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read a part of the model ({error})", where=str(folder),
                         fix="copy the model again, or retrain it") from None
    for key, value in stored.items():
        if _CSR not in key:
            values[key] = value
        elif key.endswith(f"{_CSR}shape"):
            name = key[: -len(f"{_CSR}shape")]
            values[name] = sp.csr_matrix((stored[f"{name}{_CSR}data"], stored[f"{name}{_CSR}indices"],
                                          stored[f"{name}{_CSR}indptr"]), shape=tuple(value))
    return values


def params_of(part: Any) -> dict[str, Any]:
    """A dataclass part's parameters (its fields), as saved with the model."""
    return {f.name: getattr(part, f.name) for f in fields(part)}


def from_params(cls: type[T], params: dict[str, Any]) -> T:
    """The dataclass `cls` with saved parameters; JSON lists become tuples again where the field's default is one,
    and a parameter this version does not know is an error rather than silently dropped."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelError(f"the model sets parameters {unknown} that {cls.__name__} does not have",
                         fix="load it with the taxonomist version that wrote it, or retrain it")
    return cls(**{name: tuple(value) if isinstance(value, list) and isinstance(known[name].default, tuple) else value
                  for name, value in params.items()})
