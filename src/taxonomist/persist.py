"""A Model in a model folder, and back: each part saves and restores its own state under its registered name, no
pickle, no training data needed. store.py makes the folder atomic and verified.

Entries: labels.json; scorer-NAME for each scorer (scorers/registry.py); transform-NAME for each kept transform
(adapt.SAVED); fusion (its kind in the manifest); examples (examples per label); record (the out-of-fold record);
calibration (calibrate.py); rejections (reviewers' rejected document × label pairs) and folded (the reviewed
documents learnt from a feedback store), each only where there are some; encoder (a fine-tuned encoder, which nothing
else could reproduce). The manifest's meta holds the configuration, the encoder's name and identity, the label
set's fingerprint and which parts there are.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import taxonomist

from . import encoders
from .adapt import SAVED, Adaptation, Hierarchy
from .calibrate import Calibration
from .config import Config
from .encoders.base import Encoder
from .encoders.fine_tune import is_tuned, load_tuned, save_tuned
from .errors import InputError, ModelError
from .fusion import FUSIONS
from .labels import Label, LabelSet
from .decision import Decision
from .model import Model
from .record import OutOfFold
from .scorers.registry import SCORERS
from .scoring import Scoring
from .state import read_state, write_state
from .store import load_model, save_model


def write_model(model: Model, path: str | Path) -> None:
    adaptation = model.adaptation
    transforms = {} if adaptation is None else {
        name: getattr(adaptation, name) for name in SAVED if getattr(adaptation, name) is not None}
    parts: dict[str, Callable[[Path], None]] = {
        f"scorer-{name}": scorer.save for name, scorer in model.scoring.scorers.items()}
    parts |= {f"transform-{name}": transform.save for name, transform in transforms.items()}
    if model.fusion is not None:
        parts["fusion"] = model.fusion.save
    if model.counts is not None:
        parts["examples"] = lambda folder: write_state(folder, counts=model.counts)
    if model.record is not None:
        parts["record"] = model.record.save
    if model.calibration is not None:
        parts["calibration"] = model.calibration.save
    if model.rejections:
        parts["rejections"] = lambda folder: write_state(folder, rejections=[list(r) for r in model.rejections])
    if model.folded:
        parts["folded"] = lambda folder: write_state(folder, folded=[[sha, list(ids)] for sha, ids in model.folded])
    tuned = is_tuned(model.encoder.identity)
    if tuned:  # the model carries the encoder it tuned: nothing else could reproduce its vectors
        parts["encoder"] = lambda folder: save_tuned(model.encoder, folder)
    meta = {
        "config": model.config.to_dict(),
        "encoder": {"spec": model.encoder_spec, "identity": model.encoder.identity},
        "labels": {"count": len(model.labels), "fingerprint": model.labels.fingerprint},
        "documents": model.documents,
        "decisions": [dataclasses.asdict(d) for d in model.decisions],
        "held_out": model.held_out,
        "parts": {"scorers": list(model.scoring.scorers), "transforms": list(transforms),
                  "fusion": None if model.fusion is None else model.fusion.kind},
    }

    def write(staging: Path) -> None:
        labels = [dataclasses.asdict(label) for label in model.labels]
        (staging / "labels.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
        for name, save in parts.items():
            (staging / name).mkdir()
            save(staging / name)

    save_model(path, meta, write)


def read_model(path: str | Path, *, encoder: str | Encoder | None = None, labels: LabelSet | None = None) -> Model:
    """The model saved at `path`; `labels`, when given, must be the label set it was saved with; `encoder`, when
    given, replaces the one it names (it must be the same encoder). Its files pass their checksums, so a part
    that does not hold what this version reads was written by another version: refused with the advice to
    retrain, never a traceback."""
    stored = load_model(path)
    try:
        return _read(stored, path, encoder, labels)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if isinstance(error, InputError):
            raise
        raise ModelError(f"the model holds a part this version cannot read ({type(error).__name__}: {error})",
                         where=str(path), fix=f"retrain it with this taxonomist ({taxonomist.__version__})") from None


def _read(stored: Any, path: str | Path, encoder: str | Encoder | None, labels: LabelSet | None) -> Model:
    meta = stored.meta
    saved_labels = LabelSet([Label(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
                             for d in json.loads(stored.entry("labels.json").read_text(encoding="utf-8"))])
    if labels is not None and labels.fingerprint != saved_labels.fingerprint:
        raise ModelError(
            f"the model was trained on another label set ({len(saved_labels):,} labels) than the one given "
            f"({len(labels):,} labels)", where=str(path),
            fix="leave out --labels to use the model's own, add new labels with `taxonomist labels add`, or retrain")
    encoder_, spec = _encoder(stored, encoder, path)
    parts = meta["parts"]
    unknown = sorted(set(parts["scorers"]) - set(SCORERS))
    if unknown:
        raise ModelError(f"the model uses scorers this taxonomist does not have: {unknown}", where=str(path),
                         fix="load it with the taxonomist version that wrote it, or retrain it")
    config = Config.from_dict(meta["config"])
    scorers = {name: SCORERS[name].load(stored.entry(f"scorer-{name}"), saved_labels) for name in parts["scorers"]}
    counts = read_state(stored.entry("examples"))["counts"] if "examples" in stored.manifest["entries"] else None
    decisions = tuple(Decision(**d) for d in meta.get("decisions", ()))
    mode = next((d.choice for d in decisions if d.step == "hierarchy"), config.label_text.hierarchy)
    scoring = Scoring(scorers, Hierarchy.for_labels(saved_labels, mode), config,
                      len(saved_labels), counts, getattr(encoder_, "static", False), Scoring.mask_of(saved_labels))
    transforms = {name: SAVED[name].load(stored.entry(f"transform-{name}")) for name in parts["transforms"]}
    fusion = FUSIONS[parts["fusion"]].load(stored.entry("fusion")) if parts["fusion"] else None
    entries = stored.manifest["entries"]
    record = OutOfFold.load(stored.entry("record")) if "record" in entries else None
    calibration = Calibration.load(stored.entry("calibration")) if "calibration" in entries else None
    rejections = tuple(tuple(r) for r in read_state(stored.entry("rejections"))["rejections"]) \
        if "rejections" in entries else ()
    folded = tuple((sha, tuple(ids)) for sha, ids in read_state(stored.entry("folded"))["folded"]) \
        if "folded" in entries else ()
    return Model(saved_labels, encoder_, spec, config, scoring, Adaptation(**transforms) if transforms else None,
                 fusion, documents=meta["documents"], record=record, calibration=calibration, decisions=decisions,
                 rejections=rejections, folded=folded, held_out=meta.get("held_out"))


def _encoder(stored: Any, encoder: str | Encoder | None, path: str | Path) -> tuple[Encoder, str | None]:
    """The encoder the model was trained with, refused when it is not the same one."""
    meta = stored.meta["encoder"]
    spec = encoder if isinstance(encoder, str) else meta["spec"]
    if is_tuned(meta["identity"]):
        if encoder is not None:
            raise ModelError("the model carries the encoder it fine-tuned on its examples", where=str(path),
                             fix="leave out the encoder (--encoder) when loading it")
        loaded = load_tuned(stored.entry("encoder"), meta["identity"])
    elif encoder is not None and not isinstance(encoder, str):
        loaded = encoder
    elif spec is None:
        raise ModelError("the model was trained with an encoder object, not a named one", where=str(path),
                         fix="pass the same encoder to Classifier.load(path, encoder=...)")
    else:
        loaded = encoders.resolve(spec)
    if loaded.identity != meta["identity"]:
        raise ModelError(f"the model was trained with encoder {meta['identity']!r}, but {loaded.identity!r} is "
                         "loaded", where=str(path),
                         fix="install or name the encoder the model was trained with, or retrain")
    return loaded, spec
