"""From documents to candidate labels and their scores: the retriever's shortlist through the hierarchy, the
adapted zero-shot posteriors, and every scorer's score on the candidates that the fusion weighs.

A `Scoring` is a set of fitted scorers with the settings they rank by. A model ranks through one; during
training each held-out fold is scored through one made of the scorers fitted without it, so that the fusion
learns from scores like those of new documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .adapt import Adaptation, Hierarchy, LabelPrior, Propagation, SelfTraining, softmax_rows
from .config import Config
from .decision import Decision
from .scorers.base import Batch, Scorer
from .sparse import csr_lookup, csr_top_k, to_csr, union


@dataclass(frozen=True)
class Scoring:
    """`counts`: examples per label (None without examples); `static`: the encoder is static (no self-training);
    `assignable`: bool (L,) of the labels that may be suggested, None when all may (grouping-only labels are
    taken out of every candidate list, so they take no posterior mass either)."""

    scorers: Mapping[str, Scorer]
    hierarchy: Hierarchy | None
    config: Config
    n_labels: int
    counts: np.ndarray | None = None
    static: bool = False
    assignable: np.ndarray | None = None

    @classmethod
    def mask_of(cls, labels) -> np.ndarray | None:
        """The `assignable` mask of a label set: None when every label is."""
        return None if labels.assignable.all() else labels.assignable

    @property
    def retriever(self) -> Scorer:
        """The scorer whose shortlist and similarities the zero-shot posteriors start from (see Scorer.retrieval)."""
        return min((s for s in self.scorers.values() if s.retrieval is not None), key=lambda s: s.retrieval)

    def candidates(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """The retriever's shortlist plus ancestors in a hierarchy, with exact similarities."""
        retriever = self.retriever
        candidates, _ = retriever.shortlist(batch, self.config.rank.shortlist)
        if self.hierarchy is not None:
            candidates = self.hierarchy.expand(candidates)
        sims = retriever.score(batch, candidates)
        if self.hierarchy is not None:
            sims = self.hierarchy.lift(candidates, sims)
        sims = self._with_mentions(batch, candidates, sims)  # after lifting: a mention is of the label named
        if self.assignable is not None:
            candidates = self._assignable_only(candidates)
            sims = np.where(candidates >= 0, sims, -np.inf).astype(sims.dtype)
        return candidates, sims

    def _with_mentions(self, batch: Batch, candidates: np.ndarray, sims: np.ndarray) -> np.ndarray:
        """Without examples, a label named in the text gains `mention_weight` times its lexical score (at most 1):
        an embedding blurs a name into its neighbourhood, a mention is the name itself. Added after hierarchy
        lifting, so the label named ranks above the parents its similarity lifts. Dev splits (a fifth of train),
        P@1 without → with 0.1, MiniLM / static: foldoc 37.8 → 39.5 / 35.8 → 36.6; gcide 48.1 → 48.4 / 19.2 → 19.7;
        wordnet-taxonomy 37.6 → 43.0 / 29.7 → 35.3 (its :mixed and :names variants +5.8 to +8.1); emoji 45.1 →
        45.1 / 42.6 → 42.2 and emoji:grouping 48.0 → 47.5 / 43.4 → 43.0 (one document of 244 each: a generic
        label such as "flag" named in another's text). 0.05 lost the same emoji document and gained less elsewhere.
        With examples the fusion learns how far to trust mentions (the lexical feature): nothing is added here."""
        lexical = self.scorers.get("lexical")
        weight = self.config.rank.mention_weight
        if self.counts is not None or lexical is None or weight <= 0:
            return sims
        found = np.clip(lexical.score(batch, candidates), 0.0, 1.0)
        return np.where(candidates >= 0, sims + weight * found, sims).astype(sims.dtype)

    def _assignable_only(self, candidates: np.ndarray) -> np.ndarray:
        if self.assignable is None:
            return candidates
        return np.where((candidates >= 0) & self.assignable[np.maximum(candidates, 0)], candidates, -1)

    def posteriors(self, candidates: np.ndarray, sims: np.ndarray, adaptation: Adaptation) -> sp.csr_matrix:
        """Softmax over the shortlist of similarity / temperature + log prior, as a sparse (n, L) matrix."""
        logits = sims / self.config.rank.temperature
        if adaptation.prior is not None:
            logits = logits + adaptation.prior.logits(candidates)
        return to_csr(candidates, softmax_rows(logits), self.n_labels)

    def smoothed(self, batch: Batch, adaptation: Adaptation) -> sp.csr_matrix:
        """Posteriors with priors and propagation applied; documents of the pool reuse what adapting found."""
        rows = adaptation.pool_rows(batch.texts)
        missing = np.flatnonzero(rows < 0)
        if len(missing) == 0:
            return adaptation.posteriors[rows]
        fresh = batch.rows(missing)
        posteriors = self.posteriors(*self.candidates(fresh), adaptation)
        if adaptation.propagation is not None:
            posteriors = adaptation.propagation.smooth(fresh.vectors, posteriors)
        if len(missing) == len(rows):
            return posteriors
        rows[missing] = adaptation.posteriors.shape[0] + np.arange(len(missing))
        return sp.vstack([adaptation.posteriors, posteriors], format="csr")[rows]

    def zero_shot(self, batch: Batch, adaptation: Adaptation) -> sp.csr_matrix:
        """Posteriors from the retriever with priors, propagation and self-training applied."""
        posteriors = self.smoothed(batch, adaptation)
        if adaptation.self_training is None:
            return posteriors
        # Geometric mix with the pseudo-label classifier over the best candidates.
        top, probs = csr_top_k(posteriors, self.config.adapt.self_training_shortlist)
        w = self.config.adapt.self_training
        mixed = (1 - w) * np.log(np.maximum(probs, 1e-12)) + w * adaptation.self_training.log_proba(batch.vectors, top)
        return to_csr(top, softmax_rows(np.where(top >= 0, mixed, -np.inf)), self.n_labels)

    def fusion_inputs(self, batch: Batch, adaptation: Adaptation) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Candidates (the zero-shot shortlist ∪ the proposing scorers' own ∪ the labels without examples in the
        retriever's shortlist) and every scorer's score there, the zero-shot log posterior ("zero_shot") right after
        the label-text score it comes from; -inf at padding."""
        size = self.config.rank.fusion_candidates
        posteriors = self.zero_shot(batch, adaptation)
        wide = self.counts is not None  # labels without examples come from the whole shortlist
        best = csr_top_k(posteriors, max(size, self.config.rank.shortlist) if wide else size)[0]  # best first
        lists = [best[:, :size]]
        lists += [scorer.shortlist(batch, size)[0] for scorer in self.scorers.values() if scorer.proposes]
        if wide:
            lists.append(self._without_examples(best[:, :self.config.rank.shortlist]))
        candidates = self._assignable_only(union(*lists))
        scores: dict[str, np.ndarray] = {}
        for name, scorer in self.scorers.items():
            scores[name] = scorer.score(batch, candidates)
            if name == "label_text":
                scores["zero_shot"] = np.where(
                    candidates >= 0, np.log(np.maximum(csr_lookup(posteriors, candidates), 1e-6)), -np.inf)
        return candidates, scores

    def _without_examples(self, shortlist: np.ndarray) -> np.ndarray:
        """The labels without examples in the retriever's whole shortlist: only the label text can propose them
        (no examples, no neighbours, no sparse model), and among labels with examples the posteriors' best
        `fusion_candidates` leave many out. wordnet-taxonomy dev (static encoder): their candidates' recall 77.7% →
        83.2%, 6 more candidates per document (of 137), P@1 65.94 → 66.05, R@50 90.65 → 90.86."""
        return np.where((shortlist >= 0) & (self.counts[np.maximum(shortlist, 0)] == 0), shortlist, -1)

    def adapt(self, pool: Batch) -> Adaptation:
        """What the unlabeled pool teaches: label priors, its neighbour graph, a pseudo-label classifier; nothing
        from a pool too small to teach it (AdaptConfig.enough). Each step's choice is kept in `decisions`."""
        settings = self.config.adapt
        if not settings.enough(len(pool.texts)):
            return Adaptation()
        candidates, sims = self.candidates(pool)
        adaptation, decisions = Adaptation(), []
        adaptation.prior, decision = self._label_prior(candidates, sims)
        decisions.append(decision)
        posteriors = self.posteriors(candidates, sims, adaptation)
        per_label = len(pool.texts) / max(self.n_assignable, 1)  # what propagation and self-training need
        decisions.append(self._propagation_decision(per_label))
        if decisions[-1].choice == "on":
            adaptation.propagation = Propagation(settings.propagation_neighbours, settings.propagation_alpha)
            adaptation.propagation.fit(pool.vectors, posteriors)
            posteriors = adaptation.propagation.smooth(pool.vectors, posteriors)
        decisions.append(self._self_training_decision(per_label))
        if decisions[-1].choice == "on":
            best = csr_top_k(posteriors, 1)[0][:, 0]
            if len(np.unique(best)) > 1:  # one pseudo-label class teaches nothing (and sklearn refuses it)
                adaptation.self_training = SelfTraining().fit(pool.vectors, best, self.n_labels)
            else:
                decisions[-1] = Decision("self-training", "off", "every document's best label is the same")
        adaptation.posteriors, adaptation.vectors = posteriors, pool.vectors
        adaptation.rows = {text: row for row, text in enumerate(pool.texts)}
        adaptation.decisions = tuple(decisions)
        return adaptation

    @property
    def n_assignable(self) -> int:
        return self.n_labels if self.assignable is None else int(self.assignable.sum())

    def _label_prior(self, candidates: np.ndarray, sims: np.ndarray) -> tuple[LabelPrior | None, Decision]:
        """The pool's label shares, kept only where they are signal: fitted on two halves of the pool they must
        agree (split-half reliability, adapt/prior.py). With few documents per label they are mostly sampling
        noise, and a noisy prior reorders labels at random (emoji dev, 2.5 documents per label: 0.59-0.67)."""
        settings = self.config.adapt
        if settings.prior_iterations <= 0:
            return None, Decision("label prior", "off", "asked for")
        prior = LabelPrior(self.config.rank.temperature, settings.prior_iterations, settings.prior_strength)
        reliability = prior.split_half_reliability(candidates, sims, self.n_labels)
        why = f"split-half reliability {reliability:.2f} ({settings.prior_min_reliability:.2f} needed)"
        if reliability < settings.prior_min_reliability:
            return None, Decision("label prior", "off", why + ": too few documents to tell how common each label is")
        return prior.fit(candidates, sims, self.n_labels), Decision("label prior", "on", why)

    def _propagation_decision(self, per_label: float) -> Decision:
        """Neighbours can share a document's label only where the pool holds more documents of each label than a
        document has neighbours: with fewer, most neighbours are bound to carry other labels, and mixing their
        posteriors in blurs labels together (emoji's 96 labels and 244 documents: P@1 −3.3 with it)."""
        settings = self.config.adapt
        k = settings.propagation_neighbours
        if settings.propagation_alpha <= 0 or k <= 0:
            return Decision("propagation", "off", "asked for")
        if per_label < k + 1:
            return Decision("propagation", "off", f"{per_label:.1f} documents per label in the pool; {k + 1} are "
                            f"needed for a document's {k} neighbours to share its label")
        return Decision("propagation", "on", f"{k} neighbours, {per_label:.0f} documents per label in the pool")

    def _self_training_decision(self, per_label: float) -> Decision:
        settings = self.config.adapt
        if settings.self_training <= 0:
            return Decision("self-training", "off", "asked for")
        if self.static:
            return Decision("self-training", "off", "static encoder (it does not help there)")
        if self._well_supervised():
            return Decision("self-training", "off", "the labels have examples enough")
        if per_label < settings.self_training_docs_per_label:
            return Decision("self-training", "off", f"{per_label:.1f} documents per label in the pool; "
                            f"{settings.self_training_docs_per_label} are needed to learn a label from its own")
        return Decision("self-training", "on", f"{per_label:.0f} documents per label in the pool")

    def _well_supervised(self) -> bool:
        """The labels that have examples have `self_training_max_examples` or more on average."""
        counts = self.counts
        return counts is not None and bool((counts > 0).any()) and bool(
            counts[counts > 0].mean() >= self.config.adapt.self_training_max_examples)
