"""What of a fitted Classifier goes into a model folder, and back: no pickle, no training data needed.

Each fitted part is saved generically from its attributes — arrays into one .npz, sparse matrices as their
CSR arrays, label indexes as their vectors, plain values into the manifest's meta — and restored without
calling its constructor. The sparse XMC scorer writes its own folder. store.py makes the folder atomic.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .encoders import get_encoder
from .encoders.fine_tune import is_tuned, load_tuned, save_tuned
from .errors import ModelError
from .index import GraphIndex, LabelIndex
from .labels import Label, LabelSet
from .scorers.lexical import LexicalScorer
from .store import load_model, save_model

PLAIN = (int, float, str, bool, type(None), tuple, list)


def save(classifier: Any, path: str | Path) -> None:
    parts = _parts(classifier)
    tuned = is_tuned(classifier.encoder_.identity)
    meta: dict[str, Any] = {
        "params": {k: v for k, v in classifier.get_params().items()
                   if isinstance(v, PLAIN) and k not in ("encoder", "show_progress")},
        "encoder": {"spec": classifier.encoder if isinstance(classifier.encoder, str) else None,
                    "identity": classifier.encoder_.identity},
        "labels": {"count": len(classifier.labels), "fingerprint": classifier.labels.fingerprint},
        "contexts": list(classifier.contexts_),
        "documents": classifier.learners_.documents,
        "parts": {},
    }
    arrays: dict[str, np.ndarray] = {}
    folders: dict[str, Any] = {}
    for name, part in parts.items():
        if name == "sparse":
            folders[name] = part
            meta["parts"][name] = {"class": _class_name(part)}
            continue
        plain, part_arrays = _state(part, name)
        meta["parts"][name] = {"class": _class_name(part), "values": plain}
        arrays |= part_arrays
    if classifier.learners_.counts is not None:
        arrays["counts"] = classifier.learners_.counts

    def write(staging: Path) -> None:
        labels = [dataclasses.asdict(label) for label in classifier.labels]
        (staging / "labels.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
        with open(staging / "arrays.npz", "wb") as handle:
            np.savez(handle, **arrays)
        for name, part in folders.items():
            (staging / name).mkdir()
            part.save(staging / name)
        if tuned:  # the model carries the encoder it tuned: nothing else could reproduce its vectors
            save_tuned(classifier.encoder_, staging / "encoder")

    save_model(path, meta, write)


def load(cls: type, path: str | Path, *, encoder: Any = None, labels: LabelSet | None = None) -> Any:
    from .classifier import Adaptation, Learners

    stored = load_model(path)
    meta = stored.meta
    saved_labels = LabelSet([Label(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
                             for d in json.loads(stored.entry("labels.json").read_text(encoding="utf-8"))])
    if labels is not None and labels.fingerprint != saved_labels.fingerprint:
        raise ModelError(
            f"the model was trained on another label set ({len(saved_labels):,} labels) than the one given "
            f"({len(labels):,} labels)", where=str(path),
            fix="leave out --labels to use the model's own, add new labels with `taxonomist labels add`, or retrain")
    spec = encoder if encoder is not None else meta["encoder"]["spec"]
    if is_tuned(meta["encoder"]["identity"]):
        if encoder is not None:
            raise ModelError("the model carries the encoder it fine-tuned on its examples", where=str(path),
                             fix="leave out the encoder (--encoder) when loading it")
        encoder_ = load_tuned(stored.entry("encoder"), meta["encoder"]["identity"])
    elif spec is None:
        raise ModelError("the model was trained with an encoder object, not a named one", where=str(path),
                         fix="pass the same encoder to Classifier.load(path, encoder=...)")
    else:
        encoder_ = get_encoder(spec) if isinstance(spec, str) else spec
    if encoder_.identity != meta["encoder"]["identity"]:
        raise ModelError(f"the model was trained with encoder {meta['encoder']['identity']!r}, but "
                         f"{encoder_.identity!r} is loaded", where=str(path),
                         fix="install or name the encoder the model was trained with, or retrain")
    classifier = cls(saved_labels, encoder=spec, **meta["params"])
    classifier.encoder_ = encoder_
    classifier.contexts_ = tuple(meta["contexts"])
    classifier.hierarchy_ = classifier._hierarchy()
    with np.load(stored.entry("arrays.npz"), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    restored = {}
    for name, info in meta["parts"].items():
        if name == "sparse":
            restored[name] = _resolve(info["class"]).load(stored.entry(name))
        else:
            restored[name] = _restore(info["class"], info["values"], arrays, name)
    classifier.label_text_ = restored["label_text"]
    classifier.learners_ = Learners(prototypes=restored.get("prototypes"), linear=restored.get("linear"),
                                    neighbours=restored.get("neighbours"), sparse=restored.get("sparse"),
                                    counts=arrays.get("counts"), documents=meta["documents"])
    classifier.fusion_ = restored.get("fusion")
    classifier.lexical_ = LexicalScorer().fit(saved_labels) if classifier.learners_.counts is not None else None
    has_pool = "prior" in restored or "propagation" in restored
    classifier.pool_ = Adaptation(restored.get("prior"), restored.get("propagation")) if has_pool else None
    return classifier


def _parts(classifier: Any) -> dict[str, Any]:
    """The fitted parts worth saving; the hierarchy and the lexical index are rebuilt from the labels, and the pool's
    self-training classifier (an sklearn model) is not saved: a loaded model adapts without it."""
    learners = classifier.learners_
    pool = classifier.pool_
    candidates = {
        "label_text": classifier.label_text_,
        "prototypes": learners.prototypes, "linear": learners.linear, "neighbours": learners.neighbours,
        "sparse": learners.sparse, "fusion": classifier.fusion_,
        "prior": pool.prior if pool else None, "propagation": pool.propagation if pool else None,
    }
    return {name: part for name, part in candidates.items() if part is not None}


def _state(part: Any, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    plain: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in vars(part).items():
        if isinstance(value, np.ndarray):
            arrays[f"{prefix}/{key}"] = value
        elif isinstance(value, LabelIndex):
            arrays[f"{prefix}/{key}@index"] = value.vectors
        elif isinstance(value, GraphIndex):
            arrays[f"{prefix}/{key}@graph"] = value.to_bytes()
        elif sp.issparse(value):
            csr = value.tocsr()
            for field in ("data", "indices", "indptr"):
                arrays[f"{prefix}/{key}@csr.{field}"] = getattr(csr, field)
            arrays[f"{prefix}/{key}@csr.shape"] = np.asarray(csr.shape)
        elif isinstance(value, PLAIN):
            plain[key] = value
        else:
            raise TypeError(f"cannot save {type(part).__name__}.{key} of type {type(value).__name__}")
    return plain, arrays


def _restore(class_name: str, plain: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> Any:
    part = object.__new__(_resolve(class_name))
    for key, value in plain.items():
        setattr(part, key, tuple(value) if isinstance(value, list) else value)
    start = f"{prefix}/"
    for key, value in arrays.items():
        if not key.startswith(start):
            continue
        attr = key[len(start):]
        if attr.endswith("@index"):
            setattr(part, attr[: -len("@index")], LabelIndex(value))
        elif attr.endswith("@graph"):
            setattr(part, attr[: -len("@graph")], GraphIndex.from_bytes(value))
        elif "@csr." in attr:
            name, field = attr.split("@csr.")
            if field == "shape":
                setattr(part, name, sp.csr_matrix((arrays[f"{start}{name}@csr.data"], arrays[f"{start}{name}@csr.indices"],
                                                   arrays[f"{start}{name}@csr.indptr"]), shape=tuple(value)))
        else:
            setattr(part, attr, value)
    return part


def _class_name(part: Any) -> str:
    return f"{type(part).__module__}:{type(part).__qualname__}"


def _resolve(class_name: str) -> type:
    module, _, name = class_name.partition(":")
    if not module.startswith("taxonomist."):
        raise ModelError(f"the model names a class outside taxonomist ({class_name})", fix="retrain the model")
    return getattr(importlib.import_module(module), name)
