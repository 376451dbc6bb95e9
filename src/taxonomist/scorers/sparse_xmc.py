"""Sparse XMC scorer: TF-IDF word n-grams (1-2, sublinear tf) and a label-tree library on top.

Why Omikuji with shallow, wide, unbalanced trees (arity 32, depth 3, 3 trees; Bonsai-like): measured on
wordnet-taxonomy (65k training documents, 17k labels), it reaches P@1 61.7 / nDCG@5 64.0 where napkinXC's
PLT reaches 57.2 / 59.3 at its best (C=32; 55.5 / 57.2 with its defaults), and Omikuji's default Parabel
trees (deep, binary) 60.6 / 62.5. Omikuji's Bonsai setting (arity 100) ties on accuracy (61.5 / 64.0; runs
of Omikuji vary by ±0.2) but needs 110 s of training CPU to arity 32's 64 s. Predicting the top 50 labels,
TF-IDF included, ran at 2.6k documents/s on 2 threads with beam 10 (Parabel 350, napkinXC 380); the
model takes 89 MB. On foldoc (91 labels) every tree shape ties at P@1 68.4 and napkinXC reaches 67.6. Not
kept: character n-grams (+0.3 P@1 on wordnet for 8× the training time), min_df 1 (−0.4 P@1 on wordnet),
plain tf (a tie on foldoc), and on foldoc unigrams only (−0.5 P@1 for 40% less training), min_df 3 (−0.7)
or max_features 50k (−0.2). One tree instead of three (`library_params={"n_trees": 1}`) costs about 1 P@1
on wordnet for half the training time and a third of the size; with fewer labels than Omikuji's
min_branch_size (foldoc) the root is a leaf, so every tree would be the same and one is trained.

Speed: the TF-IDF (taxonomist.tfidf) is sklearn's at 5× the speed, and `featurize` lets several fits share
it (`Features`). Beam 5, not Omikuji's 10, ties on wordnet (P@1 61.9, P@5 28.6) at 60% of the CPU per
document, and densified weights (see _Omikuji) take another quarter off.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ModelError
from ..labels import LabelSet
from ..sparse import csr_lookup, csr_top_k, to_csr
from ..state import from_params, params_of
from ..tfidf import WordTfidf
from .base import EXAMPLES, Batch, FitInput

FORMAT = 1
# Training hyper-parameters given to each library as they are (Omikuji HyperParam fields, napkinXC PLT
# keyword arguments); `library_params` overrides them one by one.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # 3 trees: Omikuji's default. Its SVMs stop at a looser tolerance (eps 0.5, not 0.1): 40% less training
    # CPU on foldoc, 20% on wordnet-taxonomy, P@1 within ±0.2 on both.
    "omikuji": {"cluster_k": 32, "cluster_balanced": False, "max_depth": 3, "linear_eps": 0.5},
    "napkinxc": {"liblinear_c": 32.0},
}
SEEDS = {"napkinxc": "seed"}  # the parameter that takes FitInput.random_state (Omikuji's trees draw unseeded)
PINS = {"omikuji": "omikuji==0.5.2", "napkinxc": "napkinxc==0.7.2"}
VALUE_DECIMALS = 8  # of feature values in Omikuji's training file
DENSE_WEIGHTS = 0.1  # Omikuji stores weight vectors with more than this share of non-zeros densely (see _Omikuji)


@dataclass(frozen=True)
class Features:
    """TF-IDF rows of some texts and the featurizer fitted for them (`SparseXMCScorer.prepare`): `fit` and
    scoring take them in place of featurizing the texts again, so that one featurization serves several
    models on subsets of the rows (the held-out folds' and the final model)."""

    tfidf: WordTfidf
    matrix: sp.csr_matrix

    def rows(self, index: np.ndarray) -> "Features":
        return Features(self.tfidf, self.matrix[index])


@dataclass
class SparseXMCScorer:
    """Scores are the library's, in [0, 1], for each document's `top_k` labels only (0.0 elsewhere).

    `n_labels_` is the width of the targets (plus labels added since); labels without training examples are
    left out of the trees (`labels_` lists those in them), so they are never predicted. `fold_params` override
    the library's parameters for a held-out fold's model, which only has to score like the final one: one tree
    instead of three halves the cross-fitting cost of the slowest scorer.
    """

    name: ClassVar[str] = "sparse"
    needs: ClassVar[frozenset[str]] = frozenset({EXAMPLES})
    proposes: ClassVar[bool] = True
    fusion_only: ClassVar[bool] = False
    retrieval: ClassVar[int | None] = None

    library: str = "omikuji"
    max_features: int = 200_000
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    sublinear_tf: bool = True
    top_k: int = 50
    n_threads: int = 2
    beam_size: int = 5
    library_params: dict[str, Any] = field(default_factory=dict)
    fold_params: dict[str, Any] = field(default_factory=lambda: {"n_trees": 1})

    def featurize(self, texts: Sequence[str]) -> Features:
        """A TF-IDF featurizer with this scorer's parameters, fitted on `texts`, and their features."""
        tfidf = WordTfidf(**self._tfidf_params())
        try:
            return Features(tfidf, tfidf.fit_transform(list(texts)))
        except ValueError as error:  # no words, or none in min_df documents
            raise InputError(f"no words to learn from in {len(texts)} training texts ({error})",
                             fix=f"give more or longer training texts, or lower min_df (now {self.min_df})") from None

    def prepare(self, data: FitInput) -> Features:
        """The TF-IDF of every example's text (labels unused), fitted once for all the fits of one training."""
        return self.featurize(data.texts)

    def fit(self, data: FitInput) -> "SparseXMCScorer":
        """Learns from `data.texts` and `data.targets`, featurized here unless `data.prepared` holds their
        features (rows of `prepare` on these or more texts)."""
        texts = list(data.texts)
        targets = sp.csr_matrix(data.targets > 0, dtype=np.float32)  # a copy without stored zeros
        if targets.shape[0] != len(texts):
            raise InputError(f"{len(texts)} texts but {targets.shape[0]} rows of targets",
                             fix="give one row of labels per text")
        features = data.prepared.get(self.name)
        if features is not None and features.matrix.shape[0] != len(texts):
            raise InputError(f"{len(texts)} texts but {features.matrix.shape[0]} rows of features",
                             fix="give the features of these texts (Features.rows)")
        backend = _backend(self.library)
        features = self.featurize(texts) if features is None else features
        self.tfidf_ = features.tfidf
        matrix = features.matrix
        useful = matrix.getnnz(axis=1) > 0  # a text with no known word teaches the trees nothing
        matrix, targets = matrix[useful], targets[useful]
        self.labels_ = np.flatnonzero(targets.getnnz(axis=0)).astype(np.int64)
        if not len(self.labels_):
            raise InputError("no training text with a known word has a label",
                             fix="give labeled training documents")
        self.n_labels_ = targets.shape[1]
        seed = {SEEDS[self.library]: data.random_state} if self.library in SEEDS else {}
        params = {**DEFAULT_PARAMS[self.library], **seed, **self.library_params,
                  **(self.fold_params if data.fold else {})}
        # Trained on the labels with examples only, renumbered: napkinXC would otherwise score the others.
        self.model_ = backend.fit(matrix, targets[:, self.labels_].tocsr(), params, self.n_threads)
        return self

    def predict(self, texts: list[str], *, features: Features | None = None) -> sp.csr_matrix:
        """(n, n_labels_) float32: each text's top_k labels with the model's score, nothing elsewhere.
        `features`: the texts' rows from the featurizer this scorer was fitted with, instead of featurizing."""
        if features is not None and (features.tfidf is not self.tfidf_ or features.matrix.shape[0] != len(texts)):
            raise InputError("features from another featurizer, or not one row per text",
                             fix="give the rows of these texts from the Features the scorer was fitted on")
        if not texts:
            return sp.csr_matrix((0, self.n_labels_), dtype=np.float32)
        matrix = self.tfidf_.transform(texts) if features is None else features.matrix
        positions, scores = self.model_.predict(matrix, min(self.top_k, len(self.labels_)), self.beam_size)
        positions = np.where(positions >= 0, self.labels_[np.maximum(positions, 0)], -1)
        return to_csr(positions, scores, self.n_labels_)

    def _predicted(self, batch: Batch) -> sp.csr_matrix:
        """The batch's predictions, once per batch (its shortlist and its scores both read them); a held-out
        fold's batch brings its features (`Batch.inputs`)."""
        return batch.cached((id(self), "predicted"),
                            lambda: self.predict(batch.texts, features=batch.inputs.get(self.name)))

    def shortlist(self, batch: Batch, size: int) -> tuple[np.ndarray, np.ndarray]:
        return csr_top_k(self._predicted(batch), size)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return csr_lookup(self._predicted(batch), candidates)

    def add_labels(self, data: FitInput, start: int) -> "SparseXMCScorer":
        """Labels new to the model have no examples, so the trees never predict them: only the width grows."""
        grown = copy.copy(self)
        grown.n_labels_ = self.n_labels_ + len(data.labels) - start
        return grown

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        config = {"format": FORMAT, "params": params_of(self), "n_labels": self.n_labels_}
        (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        (folder / "vocabulary.json").write_text(json.dumps(self.tfidf_.terms(), ensure_ascii=False), encoding="utf-8")
        np.save(folder / "idf.npy", self.tfidf_.idf_)
        np.save(folder / "labels.npy", self.labels_)
        (folder / "model").mkdir()
        self.model_.save(folder / "model")

    @classmethod
    def load(cls, folder: Path, labels: LabelSet | None = None) -> "SparseXMCScorer":
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            terms = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
            idf = np.load(folder / "idf.npy", allow_pickle=False)
            labels_ = np.load(folder / "labels.npy", allow_pickle=False)
            if len(idf) != len(terms):
                raise ValueError(f"{len(terms)} terms but {len(idf)} idf weights")
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot read the sparse XMC model ({error})", where=str(folder),
                             fix="train the model again") from None
        if config.get("format") != FORMAT:
            raise ModelError(f"sparse XMC model of another format ({config.get('format')}, expected {FORMAT})",
                             where=str(folder), fix="train the model again with this version")
        scorer = from_params(cls, config["params"])
        scorer.tfidf_ = WordTfidf.from_terms(terms, idf, **scorer._tfidf_params())
        scorer.labels_, scorer.n_labels_ = labels_, int(config["n_labels"])
        try:
            scorer.model_ = _backend(scorer.library).load(folder / "model", scorer.n_threads)
        except RuntimeError as error:  # what the library printed is on stderr
            raise ModelError(f"cannot load the {scorer.library} model ({error})", where=str(folder / "model"),
                             fix="train the model again") from None
        return scorer

    def _tfidf_params(self) -> dict[str, Any]:
        return {"ngram_range": tuple(self.ngram_range), "min_df": self.min_df, "max_features": self.max_features,
                "sublinear_tf": self.sublinear_tf}


class _Omikuji:
    """Omikuji trains from a file in the XMC repository format and predicts one document per call: the calls
    go straight to its C API on the CSR buffers (its Python wrapper copies pairs one by one: 3× slower on
    foldoc), from `n_threads` threads, as the call releases the GIL (2.5× the documents/s on 2 cores).

    The first prediction stores the weight vectors denser than DENSE_WEIGHTS as dense arrays: on
    wordnet-taxonomy a quarter less CPU per document for 35 MB more memory. Not at fit or load, so that a
    model saved before predicting keeps its smaller sparse files (89 MB rather than 114 MB on wordnet)."""

    def __init__(self, model: Any, n_threads: int) -> None:
        self.model, self.n_threads = model, n_threads
        self.dense = False
        self.densifying = threading.Lock()  # two threads ranking at once densify once

    @classmethod
    def fit(cls, features: sp.csr_matrix, targets: sp.csr_matrix, params: dict[str, Any],
            n_threads: int) -> "_Omikuji":
        import omikuji

        hyper = omikuji.Model.default_hyper_param()
        for name, value in params.items():
            if not hasattr(hyper, name):
                raise InputError(f"omikuji has no hyper-parameter {name!r}",
                                 fix="see omikuji.Model.default_hyper_param()")
            setattr(hyper, name, value)
        if targets.shape[1] < hyper.min_branch_size:  # the root is a leaf: every tree would be the same
            hyper.n_trees = 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.txt"
            _write_xmc(path, features, targets)
            with _native_output("omikuji training"):
                model = omikuji.Model.train_on_data(str(path), hyper, n_threads=n_threads)
        model.init_prediction_thread_pool(n_threads)
        return cls(model, n_threads)

    def predict(self, features: sp.csr_matrix, k: int, beam_size: int) -> tuple[np.ndarray, np.ndarray]:
        from omikuji._libomikuji import ffi, lib

        with self.densifying:
            if not self.dense:
                with _native_output("omikuji densifying"):
                    self.model.densify_weights(DENSE_WEIGHTS, self.n_threads)
                self.dense = True
        features.sort_indices()
        indices = features.indices.astype(np.uint32)
        values = features.data.astype(np.float32)
        n, indptr = features.shape[0], features.indptr
        labels = np.zeros((n, k), dtype=np.uint32)
        scores = np.zeros((n, k), dtype=np.float32)
        found = np.zeros(n, dtype=np.int64)
        model, pool = self.model._model_ptr, self.model._thread_pool.ptr

        def run(rows: np.ndarray) -> None:
            for i in rows:
                start, stop = indptr[i], indptr[i + 1]
                found[i] = lib.omikuji_predict(
                    model, beam_size, stop - start, ffi.from_buffer("uint32_t[]", indices[start:stop]),
                    ffi.from_buffer("float[]", values[start:stop]), k,
                    ffi.from_buffer("uint32_t[]", labels[i]), ffi.from_buffer("float[]", scores[i]), pool)

        with ThreadPoolExecutor(self.n_threads) as workers:
            list(workers.map(run, np.array_split(np.arange(n), self.n_threads)))
        missing = np.arange(k) >= found[:, None]
        return np.where(missing, -1, labels.astype(np.int64)), np.where(missing, 0.0, scores)

    def save(self, folder: Path) -> None:
        with _native_output("omikuji saving"):
            self.model.save(str(folder))

    @classmethod
    def load(cls, folder: Path, n_threads: int) -> "_Omikuji":
        import omikuji

        with _native_output("omikuji loading"):
            model = omikuji.Model.load(str(folder))
        model.init_prediction_thread_pool(n_threads)
        return cls(model, n_threads)


class _NapkinXC:
    """napkinXC's PLT writes its model files into a folder at fit time and has no save: the folder lives as
    long as the model, and saving copies it."""

    def __init__(self, model: Any, folder: Any) -> None:
        self.model, self.folder = model, folder  # folder: a TemporaryDirectory after fit, a Path after load

    @classmethod
    def fit(cls, features: sp.csr_matrix, targets: sp.csr_matrix, params: dict[str, Any],
            n_threads: int) -> "_NapkinXC":
        from napkinxc.models import PLT

        folder = tempfile.TemporaryDirectory()
        model = PLT(folder.name, threads=n_threads, **params)
        with _native_output("napkinXC training"):
            model.fit(features, targets)  # a sparse label matrix: lists of lists can crash 0.7.2
        return cls(model, folder)

    def predict(self, features: sp.csr_matrix, k: int, beam_size: int) -> tuple[np.ndarray, np.ndarray]:
        n = features.shape[0]
        positions, scores = np.full((n, k), -1, dtype=np.int64), np.zeros((n, k), dtype=np.float32)
        rows = self.model.predict_proba(features, top_k=k)
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n)
        pairs = np.array([pair for row in rows for pair in row], dtype=np.float64).reshape(-1, 2)
        row = np.repeat(np.arange(n), lengths)
        col = np.arange(len(pairs)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions[row, col], scores[row, col] = pairs[:, 0].astype(np.int64), pairs[:, 1]
        return positions, scores

    def save(self, folder: Path) -> None:
        source = Path(getattr(self.folder, "name", self.folder))
        for path in source.iterdir():
            shutil.copy2(path, folder / path.name)

    @classmethod
    def load(cls, folder: Path, n_threads: int) -> "_NapkinXC":
        from napkinxc.models import PLT

        model = PLT(str(folder), threads=n_threads)
        with _native_output("napkinXC loading"):
            model.load()
        return cls(model, folder)


BACKENDS = {"omikuji": _Omikuji, "napkinxc": _NapkinXC}


def _backend(library: str) -> type[_Omikuji] | type[_NapkinXC]:
    if library not in BACKENDS:
        raise InputError(f"unknown sparse XMC library {library!r}", fix=f"use one of {', '.join(BACKENDS)}")
    try:
        __import__(library)
    except ImportError:
        raise ModelError(f"the sparse XMC library {library} is not installed",
                         fix=f"pip install {PINS[library]}") from None
    return BACKENDS[library]


def _write_xmc(path: Path, features: sp.csr_matrix, targets: sp.csr_matrix) -> None:
    """XMC repository format: header `docs features labels`, then `l1,l2 f:v f:v` per document.

    Formatted in numpy (a Python loop over the pairs took 0.35 s on foldoc): every field, a label and its
    comma or a `feature:value` pair and its space, has the same width, zero-padded (Omikuji reads 007 as 7
    and skips empty labels, so a line without labels gets a field of commas); the last label of a line ends
    with a space, its last pair with a newline. Values (at most 1: rows have unit length) keep
    VALUE_DECIMALS decimals."""
    index_width = len(str(max(features.shape[1] - 1, 0)))
    width = index_width + 4 + VALUE_DECIMALS  # `f:w.ddd` and a separator: wider than any 32-bit label and comma
    whole, fraction = np.divmod(np.rint(features.data * 10.0 ** VALUE_DECIMALS).astype(np.int64), 10 ** VALUE_DECIMALS)
    pairs = np.empty((features.nnz, width), np.uint8)
    pairs[:, :index_width] = _ascii(features.indices, index_width)
    pairs[:, index_width] = ord(":")
    pairs[:, index_width + 1: index_width + 2] = _ascii(whole, 1)
    pairs[:, index_width + 2] = ord(".")
    pairs[:, index_width + 3: -1] = _ascii(fraction, VALUE_DECIMALS)
    pairs[:, -1] = ord(" ")
    n_labels, n_pairs = np.diff(targets.indptr), np.diff(features.indptr)
    slots = np.maximum(n_labels, 1)  # label fields per line
    first = np.cumsum(slots + n_pairs) - slots - n_pairs  # each line's first field
    lines = np.full((int((slots + n_pairs).sum()), width), ord(","), np.uint8)
    labelled = first[np.repeat(np.arange(len(n_labels)), n_labels)] + _within_rows(targets.indptr)
    lines[labelled, :-1] = _ascii(targets.indices, width - 1)
    lines[(first + slots)[np.repeat(np.arange(len(n_pairs)), n_pairs)] + _within_rows(features.indptr)] = pairs
    lines[first + slots - 1, -1] = ord(" ")
    lines[first + slots + n_pairs - 1, -1] = ord("\n")
    with open(path, "wb") as handle:
        handle.write(f"{features.shape[0]} {features.shape[1]} {targets.shape[1]}\n".encode())
        handle.write(lines.data)


def _ascii(values: np.ndarray, width: int) -> np.ndarray:
    """Integers in [0, 2**32) as (n, width) zero-padded decimal ASCII (in uint32: 2x faster than int64)."""
    digits = np.empty((len(values), width), np.uint8)
    rest = values.astype(np.uint32)
    for k in range(width - 1, -1, -1):
        quotient = rest // np.uint32(10)
        digits[:, k] = rest - quotient * np.uint32(10)
        rest = quotient
    return digits + np.uint8(ord("0"))


def _within_rows(indptr: np.ndarray) -> np.ndarray:
    """Each stored entry's position within its CSR row."""
    lengths = np.diff(indptr)
    return np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)


@contextlib.contextmanager
def _native_output(what: str) -> Iterator[None]:
    """Hide what native code prints on the process's stdout/stderr (progress, timings); if the call fails,
    show it on stderr, so the error keeps its explanation."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:
                log.seek(0)
                sys.stderr.write(f"{what} failed; it printed:\n" + log.read()[-4000:].decode(errors="replace"))
