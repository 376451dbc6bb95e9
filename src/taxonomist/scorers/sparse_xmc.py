"""Sparse XMC scorer: TF-IDF word n-grams (1-2, sublinear tf) and a label-tree library on top.

Why Omikuji with shallow, wide, unbalanced trees (arity 32, depth 3, 3 trees; Bonsai-like): measured on
wordnet-taxonomy (65k training documents, 17k labels), it reaches P@1 61.7 / nDCG@5 64.0 where napkinXC's
PLT reaches 57.2 / 59.3 at its best (C=32; 55.5 / 57.2 with its defaults), and Omikuji's default Parabel
trees (deep, binary) 60.6 / 62.5. Omikuji's Bonsai setting (arity 100) ties on accuracy (61.5 / 64.0; runs
of Omikuji vary by ±0.2) but needs 110 s of training CPU to arity 32's 64 s. Predicting the top 50 labels,
TF-IDF included, runs at 2.6k documents/s on 2 threads (Parabel 350, napkinXC 380); the model takes 89 MB.
On foldoc (91 labels) every tree shape ties at P@1 68.4 and napkinXC reaches 67.6. Not kept: character
n-grams (+0.3 P@1 on wordnet for 8× the training time), min_df 1 (−0.4 P@1 on wordnet) and plain tf (a tie
on foldoc). One tree instead of three (`library_params={"n_trees": 1}`) costs about 1 P@1 for half the
training time and a third of the size.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..errors import InputError, ModelError
from ..sparse import csr_lookup, to_csr
from . import Batch

FORMAT = 1
# Training hyper-parameters given to each library as they are (Omikuji HyperParam fields, napkinXC PLT
# keyword arguments); `library_params` overrides them one by one.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "omikuji": {"cluster_k": 32, "cluster_balanced": False, "max_depth": 3},  # 3 trees: Omikuji's default
    "napkinxc": {"liblinear_c": 32.0, "seed": 0},
}
PINS = {"omikuji": "omikuji==0.5.2", "napkinxc": "napkinxc==0.7.2"}


class SparseXMCScorer:
    """Scores are the library's, in [0, 1], for each document's `top_k` labels only (0.0 elsewhere).

    `n_labels_` is the width of the targets (plus labels added since); labels without training examples are
    left out of the trees (`labels_` lists those in them), so they are never predicted.
    """

    def __init__(
        self,
        *,
        library: str = "omikuji",
        max_features: int = 200_000,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        sublinear_tf: bool = True,
        top_k: int = 50,
        n_threads: int = 2,
        beam_size: int = 10,
        library_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.library = library
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.top_k = top_k
        self.n_threads = n_threads
        self.beam_size = beam_size
        self.library_params = library_params

    def fit(self, texts: list[str], targets: sp.csr_matrix) -> "SparseXMCScorer":
        targets = sp.csr_matrix(targets > 0, dtype=np.float32)  # a copy without stored zeros
        if targets.shape[0] != len(texts):
            raise InputError(f"{len(texts)} texts but {targets.shape[0]} rows of targets",
                             fix="give one row of labels per text")
        backend = _backend(self.library)
        self.vectorizer_ = self._vectorizer()
        try:
            features = self.vectorizer_.fit_transform(texts)
        except ValueError as error:  # empty vocabulary, or min_df above the number of documents
            raise InputError(f"no words to learn from in {len(texts)} training texts ({error})",
                             fix=f"give more or longer training texts, or lower min_df (now {self.min_df})") from None
        useful = features.getnnz(axis=1) > 0  # a text with no known word teaches the trees nothing
        features, targets = features[useful], targets[useful]
        self.labels_ = np.flatnonzero(targets.getnnz(axis=0)).astype(np.int64)
        if not len(self.labels_):
            raise InputError("no training text with a known word has a label",
                             fix="give labeled training documents")
        self.n_labels_ = targets.shape[1]
        params = {**DEFAULT_PARAMS[self.library], **(self.library_params or {})}
        # Trained on the labels with examples only, renumbered: napkinXC would otherwise score the others.
        self.model_ = backend.fit(features, targets[:, self.labels_].tocsr(), params, self.n_threads)
        return self

    def predict(self, texts: list[str]) -> sp.csr_matrix:
        """(n, n_labels_) float32: each text's top_k labels with the model's score, nothing elsewhere."""
        if not texts:
            return sp.csr_matrix((0, self.n_labels_), dtype=np.float32)
        features = self.vectorizer_.transform(texts)
        positions, scores = self.model_.predict(features, min(self.top_k, len(self.labels_)), self.beam_size)
        positions = np.where(positions >= 0, self.labels_[np.maximum(positions, 0)], -1)
        return to_csr(positions, scores, self.n_labels_)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return csr_lookup(self.predict(batch.texts), candidates)

    def add_labels(self, n_new: int) -> None:
        self.n_labels_ += n_new

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        config = {"format": FORMAT, "params": self.get_params(), "n_labels": self.n_labels_}
        (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        terms = self.vectorizer_.get_feature_names_out().tolist()
        (folder / "vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        np.save(folder / "idf.npy", self.vectorizer_.idf_)
        np.save(folder / "labels.npy", self.labels_)
        (folder / "model").mkdir()
        self.model_.save(folder / "model")

    @classmethod
    def load(cls, folder: Path) -> "SparseXMCScorer":
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            terms = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
            idf = np.load(folder / "idf.npy", allow_pickle=False)
            labels = np.load(folder / "labels.npy", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot read the sparse XMC model ({error})", where=str(folder),
                             fix="train the model again") from None
        if config.get("format") != FORMAT:
            raise ModelError(f"sparse XMC model of another format ({config.get('format')}, expected {FORMAT})",
                             where=str(folder), fix="train the model again with this version")
        scorer = cls(**config["params"])
        scorer.vectorizer_ = scorer._vectorizer({term: i for i, term in enumerate(terms)})
        scorer.vectorizer_.idf_ = idf
        scorer.labels_, scorer.n_labels_ = labels, int(config["n_labels"])
        try:
            scorer.model_ = _backend(scorer.library).load(folder / "model", scorer.n_threads)
        except RuntimeError as error:  # what the library printed is on stderr
            raise ModelError(f"cannot load the {scorer.library} model ({error})", where=str(folder / "model"),
                             fix="train the model again") from None
        return scorer

    def get_params(self) -> dict[str, Any]:
        return {"library": self.library, "max_features": self.max_features, "ngram_range": list(self.ngram_range),
                "min_df": self.min_df, "sublinear_tf": self.sublinear_tf, "top_k": self.top_k,
                "n_threads": self.n_threads, "beam_size": self.beam_size,
                "library_params": dict(self.library_params or {})}

    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(ngram_range=tuple(self.ngram_range), min_df=self.min_df, max_features=self.max_features,
                               sublinear_tf=self.sublinear_tf, dtype=np.float32, vocabulary=vocabulary)


class _Omikuji:
    """Omikuji trains from a file in the XMC repository format and predicts one document per call: the calls
    go straight to its C API on the CSR buffers (its Python wrapper copies pairs one by one: 3× slower on
    foldoc), from `n_threads` threads, as the call releases the GIL (2.5× the documents/s on 2 cores)."""

    def __init__(self, model: Any, n_threads: int) -> None:
        self.model, self.n_threads = model, n_threads

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
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.txt"
            _write_xmc(path, features, targets)
            with _native_output("omikuji training"):
                model = omikuji.Model.train_on_data(str(path), hyper, n_threads=n_threads)
        model.init_prediction_thread_pool(n_threads)
        return cls(model, n_threads)

    def predict(self, features: sp.csr_matrix, k: int, beam_size: int) -> tuple[np.ndarray, np.ndarray]:
        from omikuji._libomikuji import ffi, lib

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
    """XMC repository format: header `docs features labels`, then `l1,l2 f:v f:v` per document."""
    pairs = [f"{j}:{v:.6g}" for j, v in zip(features.indices.tolist(), features.data.tolist())]
    labels = list(map(str, targets.indices.tolist()))
    fi, ti = features.indptr, targets.indptr
    with open(path, "w", encoding="ascii") as handle:
        handle.write(f"{features.shape[0]} {features.shape[1]} {targets.shape[1]}\n")
        for i in range(features.shape[0]):  # every row has a feature (fit drops those without)
            handle.write(",".join(labels[ti[i]:ti[i + 1]]) + " " + " ".join(pairs[fi[i]:fi[i + 1]]) + "\n")


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
