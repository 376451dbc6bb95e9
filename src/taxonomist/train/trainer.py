"""The Trainer makes a Model from label texts, unlabeled documents and labelled examples.

Order of work: read the domain context of bare label names off the documents; fine-tune the encoder on few
examples (train/tuning.py); fit the label-text scorers; cross-fit the example scorers to get the out-of-fold
record (train/cross_fit.py) and fit them on every example; adapt to the unlabeled pool; learn the fusion from
the record. Every random step draws from `config.random_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..adapt import Hierarchy
from ..adapt.hierarchy import BROAD_FROM_EXAMPLES, BROAD_MIN_SPREAD, effective_labels, examples_carry_ancestors
from ..calibrate import Calibration, Outcomes, band_of
from ..evaluate import evaluate
from ..config import Config
from ..context import domain_words
from ..encoders.base import Encoder
from ..errors import InputError
from ..fusion import cross_fitted, fit_fusion, probability
from ..labels import LabelSet, label_counts
from ..decision import Decision
from ..model import Model, adaptation_decision
from ..record import OutOfFold
from ..scorers.base import LABEL_TEXTS, Batch, FitInput, Scorer, example_ids
from ..scorers.label_text import label_variants
from ..scoring import Scoring
from ..sparse import csr_top_k
from . import tuning
from .cross_fit import View, cross_fit, example_scorers, fit_example_scorers, fold_size, folds_of

SPREAD_SAMPLE = 2000  # documents the hierarchy and context checks rank both ways
# An auto context is kept where the documents' first labels spread over at least this share of the labels they
# spread over without it, on either half of the sample: bare names written with the corpus' central words turn
# into hubs where they narrow, and on a small sample a ratio near 1 is noise.
# On the dev splits (a fifth of train, plain ranking, with / without; the smaller half's ratio): foldoc 1.14-1.24
# (P@1 +9.4) with MiniLM, 1.08 (+1.6) static; gcide 1.16 MiniLM, 0.93 (-0.8) static; emoji 0.96-0.97 (+2.0)
# MiniLM, 1.01 (-0.4) static.
CONTEXT_MIN_SPREAD = 1.0


class Trainer:
    def __init__(self, config: Config | None = None, *, show_progress: bool = False) -> None:
        self.config = config if config is not None else Config()
        self.show_progress = show_progress

    def fit(self, labels: LabelSet, encoder: Encoder, texts: Sequence[str] | None = None,
            label_ids: Sequence[Sequence[str]] | None = None, *, unlabeled: Sequence[str] | None = None,
            encoder_spec: str | None = None, ids: Sequence[str | None] | None = None) -> Model:
        """A model of `labels`, learnt from examples (`texts` with their `label_ids`, and their document `ids`
        for explanations to name) when given, and from `unlabeled` texts the domain context, label priors and the
        neighbour graph."""
        config = self.config
        examples = texts is not None and len(texts) > 0
        if examples and (label_ids is None or len(label_ids) != len(texts)):
            raise InputError("give one list of label ids per text", fix="pass as many label lists as texts")
        ids = example_ids(ids, len(texts)) if examples else []
        texts = list(texts) if examples else []
        targets = labels.matrix(label_ids) if examples else None
        tunable = tuning.tunable(config.train, encoder, targets)
        pool = self._encode(encoder, unlabeled) if unlabeled else None
        # The base encoder's example vectors are needed only to read the context off them (no unlabeled texts) or
        # when they are kept (no tuning).
        usable = bool(unlabeled) and config.adapt.enough(len(unlabeled))
        vectors = self._encode(encoder, texts) if examples and (tunable is None or not usable) else None
        # The domain of bare label names is read off unlabeled texts, or else off the examples' texts, where there
        # are enough of them to mean anything.
        contexts, context_decision = (self._contexts(labels, encoder, unlabeled, pool) if usable
                                      else self._contexts(labels, encoder, texts, vectors))
        cross = None
        if tunable is not None:  # from here on every text is seen through the tuned encoder
            label_texts = label_variants(labels, labels.text_views()["description"], contexts)
            tune = tuning.tuner(config.train, tunable, texts, targets, label_texts, config.random_state,
                                self.show_progress)
            if fold_size(config, len(texts)) >= config.train.min_holdout:
                cross = tuning.cross_tuned(len(texts), tune, config.random_state)
            encoder = tune(np.arange(len(texts)))
            pool = self._encode(encoder, unlabeled) if unlabeled else None
            vectors = self._encode(encoder, texts)
        base = FitInput(labels=labels, encoder=encoder, contexts=contexts, random_state=config.random_state,
                        show_progress=self.show_progress)
        scorers = self._label_scorers(base, fusion_only=not examples)
        static = getattr(encoder, "static", False)
        decisions = [self._hierarchy_mode(labels, targets, scorers, Batch(list(unlabeled), pool) if usable else None,
                                          static),
                     context_decision,
                     adaptation_decision(config, len(unlabeled)) if unlabeled else
                     Decision("adaptation", "off", "no unlabeled documents given")]
        hierarchy = Hierarchy.for_labels(labels, decisions[0].choice)
        record = None
        if examples:
            data = replace(base, label_vectors=scorers["label_text"].label_vectors, texts=texts, vectors=vectors,
                           targets=targets, ids=ids, show_progress=False)
            # A held-out fold adapts to as many texts as the model will: the unlabeled pool's size, when given.
            pool_size = min(config.adapt.pool_size, len(unlabeled)) if unlabeled else config.adapt.pool_size
            record, learnt = self._fit_examples(data, scorers, hierarchy, cross, pool_size, static)
            scorers |= learnt
        scoring = Scoring({name: scorers[name] for name in config.scorers if name in scorers}, hierarchy, config,
                          len(labels), label_counts(targets) if examples else None, static, Scoring.mask_of(labels))
        adaptation = scoring.adapt(Batch(list(unlabeled), pool)) if usable else None
        if adaptation is not None:
            decisions += adaptation.decisions
        fusion = self._fusion(record)
        outcomes = self._held_out(record, fusion)
        return Model(labels, encoder, encoder_spec, config, scoring, adaptation, fusion, documents=len(texts),
                     record=record, calibration=self._calibration(outcomes, scoring.counts),
                     decisions=tuple(decisions), held_out=held_out_metrics(outcomes, record),
                     show_progress=self.show_progress)

    def _hierarchy_mode(self, labels: LabelSet, targets, scorers: dict[str, Scorer], pool: Batch | None,
                        static: bool) -> Decision:
        """The hierarchy mode: as asked; for "auto", read off the examples (do documents carry their labels'
        ancestors?), else off the documents ("broad" must not collapse their first labels onto a few parents),
        else "off", which is right for documents filed under their most specific label (adapt/hierarchy.py)."""
        asked = self.config.label_text.hierarchy
        if not labels.is_hierarchical:
            return Decision("hierarchy", "off", "the label set is flat")
        if asked != "auto":
            return Decision("hierarchy", asked, "asked for")
        if targets is not None:
            share = examples_carry_ancestors(labels, targets)
            if share is None:
                return Decision("hierarchy", "off", "no example's label has a parent")
            mode = "broad" if share >= BROAD_FROM_EXAMPLES else "off"
            return Decision("hierarchy", mode, f"{100 * share:.0f}% of the examples' labels that have a parent come "
                            f"with it ({100 * BROAD_FROM_EXAMPLES:.0f}% or more: broad)")
        if pool is None:
            return Decision("hierarchy", "off", "no examples, or too few documents, to show that documents are "
                            "filed under broad labels too")
        sample = self._sample(pool)
        spread = {}
        for mode in ("broad", "off"):
            scoring = Scoring({"label_text": scorers["label_text"]}, Hierarchy.for_labels(labels, mode), self.config,
                              len(labels), None, static, Scoring.mask_of(labels))
            spread[mode] = effective_labels(csr_top_k(scoring.adapt(sample).posteriors, 1)[0][:, 0])
        ratio = spread["broad"] / max(spread["off"], 1e-9)
        mode = "broad" if ratio >= BROAD_MIN_SPREAD else "off"
        return Decision("hierarchy", mode, f"with 'broad' the documents' first labels spread over "
                        f"{spread['broad']:.0f} labels, with 'off' over {spread['off']:.0f} ({ratio:.2f} of them; "
                        f"'broad' needs {BROAD_MIN_SPREAD:.2f})")

    def _label_scorers(self, data: FitInput, *, fusion_only: bool) -> dict[str, Scorer]:
        """The scorers that learn from the label texts alone; those whose evidence only a fusion weighs are
        left out of a model without examples."""
        config = self.config
        return {name: config.scorer(name).fit(data) for name, scorer in config.scorers.items()
                if scorer.needs == frozenset({LABEL_TEXTS}) and not (fusion_only and scorer.fusion_only)}

    def _fit_examples(self, data: FitInput, label_scorers: dict[str, Scorer], hierarchy: Hierarchy | None,
                      cross: list[tuple[np.ndarray, Encoder]] | None, pool_size: int,
                      static: bool) -> tuple[OutOfFold | None, dict[str, Scorer]]:
        """The out-of-fold record (None when too few examples to hold any out: then the retrieving scorers alone
        are fitted, and the zero-shot posteriors over them rank) and the example scorers fitted on every example."""
        config = self.config
        names = example_scorers(config)
        n = len(data.texts)
        if fold_size(config, n) < config.train.min_holdout:
            return None, fit_example_scorers(config, data, [m for m in names if config.scorers[m].retrieval is not None])
        prepared = {name: config.scorers[name].prepare(data) for name in names if hasattr(config.scorers[name], "prepare")}
        data = replace(data, prepared=prepared)
        if cross is None:
            views = [View(data, label_scorers, folds_of(config, n)[0])]
        else:  # every example held out once, each half through the encoder tuned on the other half
            folds = folds_of(config, n, [half for half, _ in cross])
            views = []
            for (_, encoder), half_folds in zip(cross, folds):
                seen = replace(data, encoder=encoder, vectors=self._encode(encoder, data.texts))
                scorers = self._label_scorers(replace(seen, show_progress=False), fusion_only=False)
                views.append(View(replace(seen, label_vectors=scorers["label_text"].label_vectors), scorers,
                                  half_folds))
        record = cross_fit(config, views, hierarchy, pool_size, static=static, show_progress=self.show_progress)
        return record, fit_example_scorers(config, replace(data, fold=False), names)

    def _fusion(self, record: OutOfFold | None):
        """The fusion chosen on the held-out documents (see fusion.fit_fusion), or None."""
        if record is None:
            return None
        truth = record.truth
        if not truth.any() or not (~truth & np.isfinite(record.scores["zero_shot"])).any():  # needs both kinds
            return None
        return fit_fusion(record.scores, record.counts, truth, random_state=self.config.random_state,
                          boosted_min_docs=self.config.train.boosted_min_docs)

    def _held_out(self, record: OutOfFold | None, fusion) -> Outcomes | None:
        """The held-out documents' candidates scored as the model scores them (by a fusion fitted without them)."""
        if record is None:
            return None
        if fusion is None:  # the model ranks by its zero-shot posteriors
            scores = np.exp(record.scores["zero_shot"])
        else:
            scores = probability(cross_fitted(fusion, record.scores, record.counts, record.truth,
                                              self.config.random_state))
        return Outcomes.of(record.candidates, scores, record.gold)

    @staticmethod
    def _calibration(outcomes: Outcomes | None, counts: np.ndarray | None) -> Calibration | None:
        """Calibration on the held-out documents; None without them, or when their suggestions are all right or
        all wrong."""
        if outcomes is None:
            return None
        try:
            return Calibration.fit(outcomes, band_of(counts),
                                   source=f"out-of-fold record ({outcomes.n_docs:,} held-out documents)")
        except InputError:
            return None

    def _encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        return encoder.encode(list(texts), show_progress=self.show_progress)

    def _contexts(self, labels: LabelSet, encoder: Encoder, texts: Sequence[str] | None,
                  vectors: np.ndarray | None) -> tuple[tuple[str, ...], Decision]:
        """The domain context of bare label names (context.py), and why. "auto" gives one to every label or to
        none: only where no label is described (a described label is embedded without one, and bare names
        written with the corpus' central words become hubs beside it), and only where it does not narrow how
        the documents' first labels spread over the label set (a hub check on the documents at hand)."""
        settings = self.config.label_text
        if settings.context != "auto":
            words = tuple(c.strip() for c in settings.context.split(",") if c.strip())
            return words, Decision("context", ", ".join(words) or "off", "asked for")
        if not texts or not self.config.adapt.enough(len(texts)):
            return (), Decision("context", "off", "too few documents to read a domain off")
        described = sum(bool(label.description) for label in labels)
        if described:
            return (), Decision("context", "off", f"{described:,} of {len(labels):,} labels are described; a domain "
                                "context goes to every label or to none")
        views = len(self.config.scorers["label_text"].views)
        if len(labels) * views * settings.context_words > settings.context_max_texts:
            return (), Decision("context", "off", f"{len(labels):,} labels: more than {settings.context_max_texts:,} "
                                "label texts to embed")
        words = tuple(domain_words(texts, vectors, encoder, settings.context_words, self.config.random_state))
        if not words:
            return (), Decision("context", "off", "no word common enough in the documents")
        sample = self._sample(Batch(list(texts), vectors))
        with_it, without = (self._first_labels(labels, encoder, contexts, sample) for contexts in (words, ()))
        # The check must come out the same on either half of the sample: on a small pool a ratio near 1 is noise.
        halves = np.array_split(np.random.default_rng(self.config.random_state).permutation(len(with_it)), 2)
        ratios = [effective_labels(with_it[h]) / max(effective_labels(without[h]), 1e-9) for h in halves]
        why = (f"the documents' first labels spread over {effective_labels(with_it):.0f} labels with it, "
               f"{effective_labels(without):.0f} without (on either half of them {min(ratios):.2f} of that or more; "
               f"it must not narrow them: {CONTEXT_MIN_SPREAD:.2f})")
        if min(ratios) < CONTEXT_MIN_SPREAD:
            return (), Decision("context", "off", why)
        return words, Decision("context", ", ".join(words), why)

    def _first_labels(self, labels: LabelSet, encoder: Encoder, contexts: tuple[str, ...], sample: Batch) -> np.ndarray:
        """Each sample document's first label by plain label-text similarity, the labels written with `contexts`."""
        scorer = self.config.scorer("label_text").fit(FitInput(labels=labels, encoder=encoder, contexts=contexts,
                                                               random_state=self.config.random_state))
        scoring = Scoring({"label_text": scorer}, None, self.config, len(labels), None, False, Scoring.mask_of(labels))
        candidates, sims = scoring.candidates(sample)
        return candidates[np.arange(len(candidates)), np.argmax(sims, axis=1)]

    def _sample(self, pool: Batch) -> Batch:
        """Up to SPREAD_SAMPLE documents of the pool, drawn with the random state, in pool order."""
        rng = np.random.default_rng(self.config.random_state)
        return pool.rows(np.sort(rng.permutation(len(pool.texts))[:SPREAD_SAMPLE]))


HELD_OUT_METRICS = ("P@1", "P@5", "R@5", "nDCG@5")


def held_out_metrics(outcomes: Outcomes | None, record: OutOfFold | None) -> dict[str, float] | None:
    """What the model's ranking scored on its held-out documents (percentages, as `eval` prints them), with
    the candidate shortlist's recall (which caps them) and the number of documents: a model's own account of how
    good it is, for `info` and the server, without a test set."""
    if outcomes is None or record is None:
        return None
    order = np.argsort(-outcomes.scores, axis=1, kind="stable")
    ranked = np.take_along_axis(outcomes.candidates, order, axis=1)
    scores = np.take_along_axis(outcomes.scores, order, axis=1)
    result = evaluate(ranked, np.where(np.isfinite(scores), scores, 0.0), record.gold, ks=(1, 5))
    return {**{name: result.metrics[name] for name in HELD_OUT_METRICS},
            "candidate recall": round(100 * outcomes.recall, 2), "documents": float(outcomes.n_docs)}
