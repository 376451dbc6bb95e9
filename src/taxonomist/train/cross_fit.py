"""Cross-fitting: scorers fitted without a held-out fold score it, then every scorer is fitted on all the
examples. The held-out scores are the out-of-fold record (record.py) that the fusion learns from.

Folds are added (up to `max_folds`) until `min_fusion_docs` documents have been held out, so small example sets
still teach the fusion. With an encoder tuned on the examples, each half of them is seen through an encoder
tuned on the other half (train/tuning.py): a `View` per half, every example held out once.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..adapt import Hierarchy
from ..config import Config
from ..labels import label_counts
from ..record import OutOfFold
from ..scorers.base import EXAMPLES, Batch, FitInput, Scorer
from ..scoring import Scoring


@dataclass(frozen=True)
class View:
    """The examples as one encoder sees them: its vectors and label vectors (`data`), the scorers of the label
    texts fitted through it, and the folds scored through it."""

    data: FitInput
    label_scorers: Mapping[str, Scorer]
    folds: list[np.ndarray]


def fold_size(config: Config, n: int) -> int:
    """Examples per held-out fold out of `n`; under `min_holdout`, none are held out."""
    return min(config.train.max_holdout, int(config.train.holdout_share * n))


def folds_of(config: Config, n: int, halves: list[np.ndarray] | None = None) -> list[list[np.ndarray]]:
    """Random held-out folds of `n` examples, as many as it takes to hold out `min_fusion_docs` documents; or,
    per half (see View), folds that hold out every example of it once."""
    size = fold_size(config, n)
    rng = np.random.default_rng(config.random_state)
    if halves is None:
        folds = np.array_split(rng.permutation(n), round(n / size))
        return [folds[: max(1, min(config.train.max_folds, -(-config.train.min_fusion_docs // size)))]]
    return [np.array_split(rng.permutation(half), max(1, round(len(half) / size))) for half in halves]


def example_scorers(config: Config) -> list[str]:
    return [name for name in config.scorers if EXAMPLES in config.scorers[name].needs]


def fit_example_scorers(config: Config, data: FitInput, names: list[str]) -> dict[str, Scorer]:
    return {name: config.scorer(name).fit(data) for name in names}


def cross_fit(config: Config, views: list[View], hierarchy: Hierarchy | None, pool_size: int, *,
              static: bool, show_progress: bool) -> OutOfFold:
    """Each view's folds scored by scorers fitted on the other examples (through the same view), each fold
    adapted to `pool_size` of the examples' texts (labels unused: the fold itself and others), as a fitted model
    adapts to the pool or batch it ranks; never to an earlier fit's pool (adapting to the unlabeled pool instead
    was measured worse: foldoc 4-shot P@1 53.8 -> 50.8)."""
    names = example_scorers(config)
    first = views[0].data
    n, n_labels = len(first.texts), len(first.labels)
    sample = np.random.default_rng(config.random_state).permutation(n)[:pool_size]
    parts = []
    with tqdm(total=sum(len(v.folds) for v in views) + 1, desc="training (held-out folds, then all)",
              unit=" fits", disable=not show_progress, file=sys.stderr) as progress:
        for view in views:
            data = view.data
            for held in view.folds:
                held = np.sort(held)
                rest = np.setdiff1d(np.arange(n), held)
                fold_data = data.rows(rest)
                scorers = {**view.label_scorers, **fit_example_scorers(config, fold_data, names)}
                scoring = Scoring(_in_order(config, scorers), hierarchy, config, n_labels,
                                  label_counts(fold_data.targets), static, Scoring.mask_of(first.labels))
                pool = np.union1d(held, sample[: max(0, pool_size - len(held))])
                adaptation = scoring.adapt(Batch([data.texts[i] for i in pool], data.vectors[pool]))
                batch = Batch([data.texts[i] for i in held], data.vectors[held],
                              {name: prepared.rows(held) for name, prepared in data.prepared.items()})
                candidates, scores = scoring.fusion_inputs(batch, adaptation)
                parts.append(OutOfFold(rows=held, candidates=candidates, scores=scores,
                                       counts=scoring.counts[np.maximum(candidates, 0)], gold=data.targets[held]))
                progress.update()
        progress.update()
    return OutOfFold.concat(parts)


def _in_order(config: Config, scorers: Mapping[str, Scorer]) -> dict[str, Scorer]:
    """The scorers in the configuration's order, which is the order of the fusion's features."""
    return {name: scorers[name] for name in config.scorers if name in scorers}
