"""Why a label was suggested, from what the model computes anyway — nothing estimated after the fact:

- `mentions`: where the label's name or an alias occurs in the text (character offsets, and a window);
- `lifted_by`: in a hierarchy scored through children, the child whose similarity lifted this parent above
  its own;
- `scorers`: each scorer's score for the label and, for the logistic fusion (linear in them), each one's
  share of the log-odds, which add up to the fused score's log-odds;
- `nearest_examples`: the training examples nearest the text that carry the label (document id and opening
  words, as the nearest-examples scorer keeps them, and row in training order), with their similarity.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..adapt import Adaptation
from ..fusion import Fusion
from ..model import Model
from ..scorers.base import Batch
from ..scorers.neighbours import NeighbourScorer

WINDOW = 60  # characters either side of a mention
MAX_MENTIONS = 10  # per label


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def mentions(text: str, terms: Sequence[str]) -> list[dict[str, Any]]:
    """Whole-word, case-insensitive occurrences of each term, in text order."""
    found = []
    for term in dict.fromkeys(t for t in terms if t.strip()):
        for match in re.finditer(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE):
            start, end = match.span()
            lo, hi = max(0, start - WINDOW), min(len(text), end + WINDOW)
            found.append({"term": term, "start": start, "end": end, "window_start": lo, "window_end": hi,
                          "window": text[lo:hi]})
    found.sort(key=lambda m: (m["start"], -m["end"]))
    return found[:MAX_MENTIONS]


def _lifts(model: Model, batch: Batch) -> dict[int, dict[str, Any]]:
    """label position -> the child that lifted it, as Hierarchy.lift did on the retriever's candidates."""
    scoring = model.scoring
    hierarchy = scoring.hierarchy
    if hierarchy is None:
        return {}
    retriever = scoring.retriever
    candidates, _ = retriever.shortlist(batch, scoring.config.rank.shortlist)
    candidates = hierarchy.expand(candidates)
    own = retriever.score(batch, candidates)
    lifted = hierarchy.lift(candidates, own)
    before_last = own  # the values the last lifting pass read its children's scores from
    if hierarchy.levels > 1:
        earlier = copy.copy(hierarchy)
        earlier.levels = hierarchy.levels - 1
        before_last = earlier.lift(candidates, own)
    row, labels = candidates[0], model.labels
    column = {int(p): j for j, p in enumerate(row) if p >= 0}
    out = {}
    for j, p in enumerate(row):
        if p < 0 or not lifted[0, j] > own[0, j]:
            continue
        children = [(column[int(c)], int(c)) for c in labels.children_index[p] if int(c) in column]
        if not children:
            continue
        discounted = lambda jc: before_last[0, jc] - (1 - hierarchy.discount) * abs(before_last[0, jc])
        jc, c = max(children, key=lambda pair: discounted(pair[0]))
        out[int(p)] = {"id": labels.ids[c], "name": labels.names[c], "own_similarity": float(own[0, j]),
                       "child_similarity": float(before_last[0, jc]), "lifted_similarity": float(lifted[0, j])}
    return out


def _scorers(model: Model, batch: Batch) -> dict[int, dict[str, Any]]:
    """label position -> each scorer's score there (and, for the logistic fusion, its log-odds share)."""
    scoring = model.scoring
    if model.fusion is None:  # zero-shot: the similarity (mentions added) is what the posterior comes from
        retriever, lexical = scoring.retriever, scoring.scorers.get("lexical")
        candidates, sims = scoring.candidates(batch)
        found = lexical.score(batch, candidates) if lexical is not None else None
        return {int(p): {"scores": {retriever.name: _finite(s)} | ({} if found is None else
                                                                   {lexical.name: _finite(found[0, j])}),
                         "contributions": None}
                for j, (p, s) in enumerate(zip(candidates[0], sims[0])) if p >= 0}
    adaptation = model.adaptation if model.adaptation is not None else Adaptation()
    candidates, scores = scoring.fusion_inputs(batch, adaptation)
    parts = None
    if isinstance(model.fusion, Fusion):
        parts = model.fusion.contributions(scores, model.counts[np.maximum(candidates, 0)])
    out = {}
    for j, p in enumerate(candidates[0]):
        if p >= 0:
            out[int(p)] = {"scores": {name: _finite(values[0, j]) for name, values in scores.items()},
                           "contributions": None if parts is None else
                           {name: _finite(values[0, j]) for name, values in parts.items()}}
    return out


def _nearest(model: Model, batch: Batch) -> tuple[NeighbourScorer, list[int], list[float]] | None:
    scorer = model.scoring.scorers.get("neighbours")
    if scorer is None:
        return None
    rows, sims = scorer.index_.search(batch.vectors, scorer.neighbours)
    return scorer, rows[0].tolist(), sims[0].tolist()


def evidence(model: Model, text: str, positions: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The evidence for each suggested label position of one document."""
    batch = Batch([text], model.encode([text]))
    lifts, per_scorer, nearest = _lifts(model, batch), _scorers(model, batch), _nearest(model, batch)
    out = {}
    for p in positions:
        label = model.labels[p]
        found = per_scorer.get(p, {"scores": None, "contributions": None})
        examples = None
        if nearest is not None:
            scorer, rows, sims = nearest
            examples = [{"row": row, "id": scorer.example_ids_[row], "text": scorer.snippets_[row],
                         "similarity": float(sim)} for row, sim in zip(rows, sims)
                        if row >= 0 and scorer.targets_[row, p] > 0]
        out[p] = {"mentions": mentions(text, (label.name, *label.aliases)), "lifted_by": lifts.get(p),
                  "scores": found["scores"], "contributions": found["contributions"], "nearest_examples": examples}
    return out
