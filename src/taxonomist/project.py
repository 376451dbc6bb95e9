"""A Project: a model folder and its configuration, loaded lazily, in the role of Annif's AnnifProject. The CLI,
the server and a distributed job are thin callers of it.

A project either has a model folder (trained, or to be written by `train`) or only a label set (zero-shot,
fitted in memory). Ranking reads the current model without a lock: a model is read-only (model.py). Whatever
makes a new model (adapting to a corpus, learning examples, adding labels) holds the project's lock, builds the
new model beside the old one, saves it atomically where there is a folder, and only then swaps it in, so a
request in flight finishes on the model it started with.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import encoders
from .calibrate import Calibrator
from .config import Config
from .errors import InputError, NotSupportedError
from .labels import Label, LabelSet
from .model import Model, Ranking, Suggestion
from .persist import read_model, write_model
from .store import MANIFEST
from .train import Trainer


class Project:
    """`model_dir`: the model folder (read lazily; written by `train`, `learn`, `add_labels`); without one the
    project is zero-shot, in memory. `labels`: the label set, needed without a model folder and for training, and
    when given with a trained model it must be the model's. `encoder`: a spec
    ("default", "static", a path) or an encoder; a trained model keeps its own unless one is named. `config`:
    for models this project makes. `adapt`: False makes every model of this project plain similarity (no
    priors, neighbours or self-training, no domain context read off documents; see Config.plain) and never
    adapts a trained one. `allow_learning`: whether `learn` may change the model (Annif's allow_learn)."""

    def __init__(self, project_id: str = "default", *, model_dir: str | Path | None = None,
                 labels: LabelSet | None = None, encoder: str | encoders.Encoder | None = None,
                 config: Config | None = None, adapt: bool = True, allow_learning: bool = False,
                 name: str | None = None, show_progress: bool = False) -> None:
        if model_dir is None and labels is None:
            raise InputError("a project needs a label set or a model folder",
                             fix="pass --labels FILE, or --model FOLDER of a trained model")
        self.project_id = project_id
        self.name = name or project_id
        self.model_dir = None if model_dir is None else Path(model_dir)
        self.labels = labels
        self.encoder = encoder
        config = config if config is not None else Config()
        self.config = config if adapt else config.plain()
        self.adapt_models = adapt
        self.allow_learning = allow_learning
        self.show_progress = show_progress
        self._model: Model | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ the model
    @property
    def model(self) -> Model:
        """The current model: loaded from the folder (a missing or damaged one is an error), or without a folder
        fitted zero-shot on the label set, on first use."""
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._zero_shot(None) if self.model_dir is None else self._loaded()
                model = self._model
        return model

    @property
    def is_loaded(self) -> bool:
        """Whether the model is in memory already (a server is ready only then)."""
        return self._model is not None

    def adapt(self, texts: Sequence[str] | None) -> Model:
        """Fit the model to the corpus at hand (or to nothing: None). A zero-shot model is fitted on it (domain
        context, priors, neighbours, self-training); a trained one adapts to it, or drops what an earlier pool
        taught."""
        with self._lock:
            if self.model_dir is not None:
                model = self._model or self._loaded()
                self._model = model.adapted(texts) if texts and self.adapt_models else model.without_adaptation()
            else:
                self._model = self._zero_shot(texts if self.adapt_models else None)
            return self._model

    def rank(self, texts: Sequence[str], k: int = 5) -> Ranking:
        return self.model.rank(texts, k)

    def suggest(self, texts: Sequence[str], k: int = 5) -> list[list[Suggestion]]:
        return self.model.suggest(texts, k)

    # ------------------------------------------------------------------ new models
    def train(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]], *,
              unlabeled: Sequence[str] | None = None, rejections: Sequence[tuple[str, str]] = (),
              folded: Sequence[tuple[str, Sequence[str]]] = (), ids: Sequence[str | None] | None = None) -> Model:
        """A model learnt from examples (`ids`: their document ids, which explanations name), written to the model
        folder (atomically: a failed save keeps the previous model) and made current. `rejections`, `folded`: what
        reviewers' feedback gave (Model.with_feedback)."""
        if self.labels is None:
            raise InputError("training needs the label set", fix="pass --labels FILE")
        with self._lock:
            model = self._trainer().fit(self.labels, self._encoder(), texts, label_ids,
                                        unlabeled=unlabeled if self.adapt_models else None,
                                        encoder_spec=self._spec(), ids=ids)
            return self._commit(model.with_feedback(rejections, folded))

    def learn(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]], *,
              rejections: Sequence[tuple[str, str]] = (), folded: Sequence[tuple[str, Sequence[str]]] = (),
              out: str | Path | None = None, ids: Sequence[str | None] | None = None) -> dict[str, int]:
        """Fold examples (and reviewers' feedback: Model.with_feedback) into the model (see Model.with_examples)
        and save it, to `out` when given (which then becomes this project's folder); says what was updated."""
        if not self.allow_learning:
            raise NotSupportedError(f"learning is not enabled for project {self.project_id!r}",
                                    fix="enable learning for this project")
        with self._lock:
            model, report = self.model.with_examples(texts, label_ids, ids)
            folder = self.model_dir
            self.model_dir = folder if out is None else Path(out)
            try:
                self._commit(model.with_feedback(rejections, folded))
            except BaseException:
                self.model_dir = folder  # nothing was written there: the project stays as it was
                raise
            return report

    def add_labels(self, labels: Sequence[Label]) -> Model:
        """New labels, suggestible at once, saved with the model."""
        with self._lock:
            return self._commit(self.model.with_labels(labels))

    def calibrate(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]], *,
                  calibrator: Calibrator | None = None) -> Model:
        """Calibrate the current model (as adapted to the corpus at hand) on labelled documents it did not learn
        from (Model.calibrated), and save the calibration with the model as it was loaded."""
        with self._lock:
            model = self.model.calibrated(texts, label_ids, calibrator)
            saved = self._loaded() if self._has_folder_model() else model
            return self._commit(model, saved.with_calibration(model.calibration))

    def save(self, model_dir: str | Path) -> None:
        """Write the current model to `model_dir`, which becomes this project's folder."""
        with self._lock:
            model = self.model  # before the folder changes: a zero-shot project's model is not in that folder
            self.model_dir = Path(model_dir)
            self._commit(model)

    def info(self) -> dict[str, Any]:
        """What the project is: its model's labels, encoder, examples and parts (Annif's project dump)."""
        model = self.model
        counts = model.counts
        return {"project_id": self.project_id, "name": self.name,
                "model_dir": None if self.model_dir is None else str(self.model_dir),
                "labels": len(model.labels), "encoder": model.encoder.identity,
                "is_trained": counts is not None, "documents": model.documents,
                "labels_with_examples": 0 if counts is None else int((counts > 0).sum()),
                "scorers": list(model.scoring.scorers), "fusion": None if model.fusion is None else model.fusion.kind,
                "calibration": None if model.calibration is None else model.calibration.source,
                "contexts": list(model.contexts),
                "held_out": model.held_out, "checksum": self.checksum(), "rejections": len(model.rejections),
                "allow_learning": self.allow_learning}

    def checksum(self) -> str | None:
        """The sha256 of the saved model's manifest (which names every part's checksum): what a stored suggestion
        records as the model that gave it. None without a saved model."""
        if not self._has_folder_model():
            return None
        return hashlib.sha256((self.model_dir / MANIFEST).read_bytes()).hexdigest()

    # ------------------------------------------------------------------ steps
    def _commit(self, model: Model, saved: Model | None = None) -> Model:
        """`model` becomes current once `saved` (the same model as the folder keeps it: `model` itself, or, for a
        change that must not save what the model adapted to, the model as loaded with that change) is written."""
        if self.model_dir is not None:
            write_model(saved or model, self.model_dir)
        self._model = model
        self.labels = model.labels
        return model

    def _has_folder_model(self) -> bool:
        return self.model_dir is not None and (self.model_dir / MANIFEST).is_file()

    def _loaded(self) -> Model:
        model = read_model(self.model_dir, encoder=self.encoder, labels=self.labels)
        return replace(model, show_progress=self.show_progress)

    def _zero_shot(self, texts: Sequence[str] | None) -> Model:
        return self._trainer().fit(self.labels, self._encoder(), unlabeled=texts or None, encoder_spec=self._spec())

    def _trainer(self) -> Trainer:
        return Trainer(self.config, show_progress=self.show_progress)

    def _encoder(self) -> encoders.Encoder:
        return encoders.resolve(self.encoder if self.encoder is not None else "default")

    def _spec(self) -> str | None:
        return self.encoder if isinstance(self.encoder, str) else "default" if self.encoder is None else None
