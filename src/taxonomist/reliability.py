"""How far probabilities and label sets can be trusted: expected calibration error and Brier score over each
document's top-k suggestions, and the coverage and size of label sets, overall and by label-frequency band."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .calibrate import N_BANDS
from .errors import TaxonomistError
from .fusion import BANDS
from .sparse import csr_lookup

ECE_BINS = 15
# "0", "1-4", "5-19", "20+": label frequency (training examples, or calibration documents without them)
BAND_NAMES = tuple(str(low) if high == low + 1 else f"{low}-{high - 1}" if high else f"{low}+"
                   for low, high in zip(BANDS.tolist(), [*BANDS[1:].tolist(), 0]))


def ece(probabilities: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: over equal-width probability bins, the pairs' share times the gap between the
    bin's mean probability and its share of right pairs."""
    if not len(probabilities):
        return float("nan")
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, probabilities, bins) - np.bincount(which, right.astype(float), bins))
    return float(gap.sum() / count.sum())


def reliability_curve(probabilities: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> dict[str, list]:
    """Per bin: mean probability, share right, pairs (for a reliability diagram)."""
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, probabilities, bins) / count
        share = np.bincount(which, right.astype(float), bins) / count
    return {"probability": [None if c == 0 else float(x) for x, c in zip(mean_p, count)],
            "right": [None if c == 0 else float(x) for x, c in zip(share, count)], "pairs": count.tolist()}


@dataclass(frozen=True)
class Reliability:
    """`ece`/`brier`: at each k, over every document's top-k suggestions; `by_band`: the same at the largest k
    for the suggestions of each band's labels; `curve`: the reliability diagram at the largest k."""

    ece: dict[str, float]
    brier: dict[str, float]
    by_band: dict[str, dict[str, float]]
    curve: dict[str, list]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reliability(positions: np.ndarray, probabilities: np.ndarray, gold: sp.csr_matrix, label_bands: np.ndarray,
                ks: tuple[int, ...] = (1, 5)) -> Reliability:
    """Of a ranking's probabilities (best first) against the gold labels."""
    right = csr_lookup(sp.csr_matrix(gold), positions) > 0
    out_ece, out_brier = {}, {}
    for k in ks:
        valid = positions[:, :k] >= 0
        p, r = probabilities[:, :k][valid], right[:, :k][valid]
        out_ece[f"ECE@{k}"] = ece(p, r)
        out_brier[f"Brier@{k}"] = float(np.mean((p - r) ** 2)) if len(p) else float("nan")
    k = max(ks)
    valid = positions[:, :k] >= 0
    p, r = probabilities[:, :k][valid], right[:, :k][valid]
    bands = label_bands[positions[:, :k][valid]]
    by_band = {BAND_NAMES[b]: {"pairs": int((bands == b).sum()), f"ECE@{k}": ece(p[bands == b], r[bands == b]),
                               f"Brier@{k}": float(np.mean((p[bands == b] - r[bands == b]) ** 2))
                               if (bands == b).any() else float("nan")}
               for b in range(N_BANDS)}
    return Reliability(out_ece, out_brier, by_band, reliability_curve(p, r))


@dataclass(frozen=True)
class SetQuality:
    """Label sets against the gold labels: the share of gold labels inside (`coverage`, per gold label), the share
    of documents whose every gold label is inside (`set_coverage`), the mean share of a document's gold labels
    left out (`fnr`), set sizes, empty sets; coverage by the gold label's band."""

    coverage: float
    set_coverage: float
    fnr: float
    mean_size: float
    median_size: float
    empty: int
    by_band: dict[str, dict[str, float | int]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def set_quality(positions: np.ndarray, gold: sp.csr_matrix, label_bands: np.ndarray) -> SetQuality:
    gold = sp.csr_matrix(gold)
    inside = csr_lookup(gold, positions) > 0
    found = inside.sum(axis=1)
    n_gold = np.diff(gold.indptr)
    labelled = n_gold > 0
    sizes = (positions >= 0).sum(axis=1)
    gold_bands = label_bands[gold.indices]
    found_bands = label_bands[positions[inside]]
    by_band = {}
    for b in range(N_BANDS):
        total = int((gold_bands == b).sum())
        by_band[BAND_NAMES[b]] = {"gold": total,
                                  "coverage": float((found_bands == b).sum() / total) if total else float("nan")}
    return SetQuality(
        coverage=float(found.sum() / max(1, n_gold.sum())),
        set_coverage=float((found[labelled] == n_gold[labelled]).mean()) if labelled.any() else float("nan"),
        fnr=float((1 - found[labelled] / n_gold[labelled]).mean()) if labelled.any() else float("nan"),
        mean_size=float(sizes.mean()) if len(sizes) else 0.0, median_size=float(np.median(sizes)) if len(sizes) else 0.0,
        empty=int((sizes == 0).sum()), by_band=by_band)


CURVE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


@dataclass(frozen=True)
class Confidence:
    """What eval says of a model's confidence on labelled documents: where its calibration came from (None: not
    calibrated, and then nothing else), the candidates' recall of the gold labels (which caps coverage), the
    reliability of its probabilities, its label sets at the requested coverage, and coverage against set size
    over CURVE_LEVELS (per-label guarantee)."""

    calibration: str | None
    recall: float | None = None
    recall_by_band: dict[str, float] | None = None
    reliability: Reliability | None = None
    requested: float | None = None
    guarantee: str | None = None
    sets: SetQuality | None = None
    curve: tuple[dict[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        if self.calibration is None:
            return "confidence: the model is not calibrated, so its scores are not probabilities (taxonomist calibrate)"
        r = self.reliability
        lines = [f"confidence (calibration: {self.calibration}); candidates hold {100 * self.recall:.2f}% of the "
                 "gold labels",
                 "  " + "  ".join(f"{k} {v:.4f}" for k, v in (r.ece | r.brier).items())]
        lines += [f"  band {name}: {b['pairs']:,} pairs, " + ", ".join(f"{k} {v:.4f}" for k, v in b.items()
                                                                       if k != "pairs") for name, b in r.by_band.items()
                  if b["pairs"]]
        if self.sets is not None:
            s = self.sets
            lines += [f"label sets at coverage {self.requested:g} ({self.guarantee} guarantee): "
                      f"{100 * s.coverage:.2f}% of gold labels inside, all of a document's in {100 * s.set_coverage:.2f}%"
                      f", mean share missed {100 * s.fnr:.2f}%; size mean {s.mean_size:.2f}, median {s.median_size:g}, "
                      f"{s.empty:,} empty"]
            lines += [f"  band {name}: {b['gold']:,} gold labels, {100 * b['coverage']:.2f}% inside (candidates hold "
                      f"{100 * self.recall_by_band[name]:.2f}%)" for name, b in s.by_band.items() if b["gold"]]
        return "\n".join(lines)


def confidence_of(calibration: Any, ranked: np.ndarray, probabilities: np.ndarray, candidates: np.ndarray,
                  candidate_scores: np.ndarray, gold: sp.csr_matrix, coverage: float | None = None,
                  guarantee: str = "label") -> Confidence:
    """Confidence of a calibrated model (`calibration`, see calibrate.Calibration) from its ranking (label positions
    best first, with their probabilities) and all its candidates with their scores, for the same documents."""
    from .calibrate import Outcomes

    if calibration is None:
        return Confidence(None)
    bands = calibration.calibrator.band_of(np.arange(gold.shape[1]))
    rel = reliability(ranked, probabilities, gold, bands)
    in_band = calibration.calibrator.band_of(candidates)

    def sets(level: float, kind: str) -> np.ndarray:
        keep = (candidates >= 0) & (candidate_scores >= calibration.set_thresholds(level, kind).by_band[in_band])
        return np.where(keep, candidates, -1)

    outcomes = Outcomes.of(candidates, candidate_scores, gold)
    by_band = {name: float(r) for name, r in zip(BAND_NAMES, outcomes.recall_by_band(bands)) if np.isfinite(r)}
    curve = []
    for level in CURVE_LEVELS:
        try:
            quality = set_quality(sets(level, "label"), gold, bands)
        except TaxonomistError:  # a level the calibration cannot reach: left off the curve
            continue
        curve.append({"requested": level, "coverage": quality.coverage, "mean_size": quality.mean_size})
    quality = None if coverage is None else set_quality(sets(coverage, guarantee), gold, bands)
    return Confidence(calibration.source, outcomes.recall, by_band, rel, coverage,
                      guarantee if coverage is not None else None, quality, tuple(curve))
