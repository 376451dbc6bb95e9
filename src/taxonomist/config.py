"""Every setting of a model, typed and saved with it: what its label texts are, how it ranks, adapts to a corpus
and learns from examples, and each scorer's own parameters. Defaults live here and nowhere else; each says what
it was chosen on. `Config.from_options` maps the flat option names that `Classifier` and the CLI take onto it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .adapt.hierarchy import CHOICES
from .errors import InputError
from .scorers.base import EXAMPLES, Scorer
from .scorers.registry import SCORERS
from .state import from_params, params_of


@dataclass(frozen=True)
class LabelTextConfig:
    """How labels are read. `context`: the domain of bare label names ("computing"; "auto" reads it off the
    documents; "" none); auto context embeds each bare label once per context word, skipped when that would be
    more than `context_max_texts` texts. `hierarchy`: "broad" when documents are filed under broad labels and
    their ancestors (a parent is scored through its children), "specific" (parents right after their matching
    children), "off" (parents by their own text: documents carry their most specific label), or "auto": decided
    from the examples, or without them from the documents, and "off" when nothing shows (adapt/hierarchy.py)."""

    context: str = "auto"
    context_words: int = 10
    context_max_texts: int = 30_000
    hierarchy: str = "auto"


@dataclass(frozen=True)
class RankConfig:
    """`shortlist`: labels retrieved per document before re-scoring; `temperature` turns similarities into
    posteriors; `fusion_candidates`: what each source (zero-shot, nearest examples, sparse model) adds to the list
    the fusion scores (on wordnet-taxonomy, static encoder, 50 rather than 100 cost 0.04 P@1 and ranked 1.4x
    faster). `mention_weight`: in a model without examples, what a label named in the text (its name or an alias,
    the lexical scorer's score, at most 1) adds to its similarity; with examples the fusion weighs the mentions
    instead. Chosen on the dev splits (see Scoring.candidates)."""

    shortlist: int = 100
    temperature: float = 0.05
    fusion_candidates: int = 50
    mention_weight: float = 0.1


@dataclass(frozen=True)
class AdaptConfig:
    """What unlabeled documents teach (adapt/): label priors, the neighbour graph, self-training.

    `enabled`: False for plain similarity, nothing learnt from unlabeled documents. A model adapts to a pool of
    documents it is fitted on (or adapted to), never to the batch it ranks, so a document's suggestions do not
    depend on which others share its batch; a pool of fewer than `min_pool` documents is too small for a label
    prior, a neighbour graph or a domain context to mean anything, and is not adapted to. `pool_size`: the most
    documents adapted to. The label prior is kept where its split-half reliability is `prior_min_reliability` or
    more (dev splits: foldoc 0.94-0.99, gcide 0.99, wordnet-taxonomy 0.87-0.89 kept, P@1 +0.6 to +4.7; emoji
    0.59-0.67 dropped, where it moved P@1 by -0.4 to +0.8 (one to two of 244 documents) and cost up to
    0.9 nDCG@5). Propagation needs more documents per label in the pool than `propagation_neighbours`
    (scoring.py says why).
    Self-training needs pseudo-labelled documents for most labels: `self_training_docs_per_label` of pool per
    label before it switches on. It is off with static encoders (measured on foldoc P@1 −3.5 with model2vec,
    +0.2 with wordllama at most of the static path's time; +1.2 to +1.5 with MiniLM), and once labels have
    `self_training_max_examples` real examples on average (foldoc +2.2 P@1 at 4 per label, nothing at 16, at 3×
    the training time)."""

    enabled: bool = True
    min_pool: int = 50
    pool_size: int = 20_000
    prior_iterations: int = 1
    prior_strength: float = 0.5
    prior_min_reliability: float = 0.8
    propagation_neighbours: int = 10
    propagation_alpha: float = 0.5
    self_training: float = 0.5
    self_training_docs_per_label: int = 10
    self_training_shortlist: int = 50
    self_training_max_examples: float = 10.0

    def plain(self) -> "AdaptConfig":
        """No transductive step at all: plain similarity to the label texts."""
        return replace(self, enabled=False)

    def enough(self, n_documents: int) -> bool:
        """Whether a pool of this many documents is adapted to."""
        return self.enabled and n_documents >= self.min_pool


@dataclass(frozen=True)
class FineTuneConfig:
    """Contrastive tuning of a transformer encoder on the examples (encoders/fine_tune.py)."""

    epochs: int = 5
    batch_size: int = 32
    max_tokens: int = 128
    learning_rate: float = 2e-5
    scale: float = 20.0
    label_negatives: int = 256


@dataclass(frozen=True)
class TrainConfig:
    """Learning from examples (train/).

    `fine_tune`: "auto" tunes a transformer encoder on at most `fine_tune_max_examples` examples with
    `fine_tune_min_per_label` or more per label on average (measured on foldoc, 4 per label, 355 documents: P@1
    52.37 -> 55.45, mean of 3 random states, for about 8 minutes on 2 CPU cores instead of 2 s; with one per
    label there are no pairs to learn from: 46.8 frozen, 43.3 tuned), "on" always, "off" never.
    The fusion learns from held-out folds: `holdout_share` of the examples, at most `max_holdout` documents a fold,
    none under `min_holdout`; folds are added (up to `max_folds`) until `min_fusion_docs` documents are held out.
    Boosted trees are tried from `boosted_min_docs` held-out documents on (see fusion.py)."""

    fine_tune: str = "auto"
    fine_tune_max_examples: int = 1000
    fine_tune_min_per_label: float = 2.0
    tuning: FineTuneConfig = field(default_factory=FineTuneConfig)
    holdout_share: float = 0.2
    max_holdout: int = 3000
    min_holdout: int = 20
    min_fusion_docs: int = 1000
    max_folds: int = 5
    boosted_min_docs: int = 2000


FINE_TUNE = ("auto", "on", "off")
# The scorers learning from examples, all on by default: the `supervised` option's choices.
SUPERVISED = tuple(name for name, cls in SCORERS.items() if cls.needs == frozenset({EXAMPLES}))


def default_scorers() -> dict[str, Scorer]:
    return {name: cls() for name, cls in SCORERS.items()}


@dataclass(frozen=True)
class Config:
    """`scorers`: the scorers a model uses, by registered name, each an unfitted instance that holds its parameters
    (a fit works on a copy); "label_text" is always one. `random_state` reaches every random step."""

    label_text: LabelTextConfig = field(default_factory=LabelTextConfig)
    rank: RankConfig = field(default_factory=RankConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scorers: dict[str, Scorer] = field(default_factory=default_scorers)
    random_state: int = 0

    def __post_init__(self) -> None:
        if "label_text" not in self.scorers:
            raise InputError("a model needs the label-text scorer", fix="keep 'label_text' among the scorers")
        unknown = sorted(set(self.scorers) - set(SCORERS))
        if unknown:
            raise InputError(f"unknown scorers {unknown}", fix=f"choose from {sorted(SCORERS)}")
        if self.label_text.hierarchy not in CHOICES:
            raise InputError(f"hierarchy must be one of {CHOICES}, got {self.label_text.hierarchy!r}",
                             fix="choose 'auto', 'broad', 'specific' or 'off'")
        if self.train.fine_tune not in FINE_TUNE:
            raise InputError(f"fine_tune must be one of {FINE_TUNE}, got {self.train.fine_tune!r}",
                             fix="choose 'auto', 'on' or 'off'")

    def scorer(self, name: str) -> Scorer:
        """A fresh, unfitted copy of the configured scorer `name`."""
        return replace(self.scorers[name])

    def plain(self) -> "Config":
        """Plain similarity to the label texts: nothing learnt from unlabeled documents, no domain context read off
        them (a context given by name is kept)."""
        context = "" if self.label_text.context == "auto" else self.label_text.context
        return replace(self, adapt=self.adapt.plain(), label_text=replace(self.label_text, context=context))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: asdict(getattr(self, f.name)) for f in fields(self) if f.name not in ("scorers", "random_state")}
        return out | {"scorers": {name: params_of(s) for name, s in self.scorers.items()},
                      "random_state": self.random_state}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """What to_dict wrote; a setting this version does not know is an error, not silently dropped."""
        train = dict(values["train"])
        train["tuning"] = from_params(FineTuneConfig, train["tuning"])
        unknown = sorted(set(values["scorers"]) - set(SCORERS))
        if unknown:
            raise InputError(f"the model uses scorers this version does not have: {unknown}",
                             fix="load it with the taxonomist version that wrote it, or retrain it")
        return cls(label_text=from_params(LabelTextConfig, values["label_text"]),
                   rank=from_params(RankConfig, values["rank"]), adapt=from_params(AdaptConfig, values["adapt"]),
                   train=from_params(TrainConfig, train),
                   scorers={name: from_params(SCORERS[name], params) for name, params in values["scorers"].items()},
                   random_state=int(values["random_state"]))

    @classmethod
    def from_options(cls, *, views: tuple[str, ...] | None = None, context: str = LabelTextConfig.context,
                     shortlist: int = RankConfig.shortlist, temperature: float = RankConfig.temperature,
                     prior_iterations: int = AdaptConfig.prior_iterations,
                     prior_strength: float = AdaptConfig.prior_strength, hierarchy: str = LabelTextConfig.hierarchy,
                     propagation_neighbours: int = AdaptConfig.propagation_neighbours,
                     propagation_alpha: float = AdaptConfig.propagation_alpha,
                     self_training: float = AdaptConfig.self_training, supervised: tuple[str, ...] = SUPERVISED,
                     prototype_shrinkage: float | None = None, linear_alpha: float | None = None,
                     neighbours: int | None = None, fine_tune: str = TrainConfig.fine_tune, adapt: bool = True,
                     mention_weight: float = RankConfig.mention_weight, random_state: int = 0) -> "Config":
        """The configuration that the flat options of `Classifier` and the CLI name (None: the scorer's default)."""
        unknown = sorted(set(supervised) - set(SUPERVISED))
        if unknown:
            raise InputError(f"unknown supervised scorers {unknown}", fix=f"choose from {SUPERVISED}")
        scorers = {name: scorer for name, scorer in default_scorers().items()
                   if name not in SUPERVISED or name in supervised}
        for name, param, value in (("label_text", "views", views), ("prototypes", "shrinkage", prototype_shrinkage),
                                   ("linear", "alpha", linear_alpha), ("neighbours", "neighbours", neighbours)):
            if value is not None and name in scorers:
                scorers[name] = replace(scorers[name], **{param: value})
        return cls(label_text=LabelTextConfig(context=context, hierarchy=hierarchy),
                   rank=RankConfig(shortlist=shortlist, temperature=temperature, mention_weight=mention_weight),
                   adapt=AdaptConfig(enabled=adapt, prior_iterations=prior_iterations, prior_strength=prior_strength,
                                     propagation_neighbours=propagation_neighbours,
                                     propagation_alpha=propagation_alpha, self_training=self_training),
                   train=TrainConfig(fine_tune=fine_tune), scorers=scorers, random_state=random_state)

    def to_options(self) -> dict[str, Any]:
        """The flat options of `from_options` that this configuration sets (those of absent scorers left out)."""
        scorers, adapt = self.scorers, self.adapt
        options = dict(views=scorers["label_text"].views, context=self.label_text.context,
                       shortlist=self.rank.shortlist, temperature=self.rank.temperature,
                       prior_iterations=adapt.prior_iterations, prior_strength=adapt.prior_strength,
                       hierarchy=self.label_text.hierarchy, propagation_neighbours=adapt.propagation_neighbours,
                       propagation_alpha=adapt.propagation_alpha, self_training=adapt.self_training,
                       supervised=tuple(name for name in SUPERVISED if name in scorers),
                       fine_tune=self.train.fine_tune, adapt=adapt.enabled, mention_weight=self.rank.mention_weight,
                       random_state=self.random_state)
        for name, param, option in (("prototypes", "shrinkage", "prototype_shrinkage"), ("linear", "alpha", "linear_alpha"),
                                    ("neighbours", "neighbours", "neighbours")):
            if name in scorers:
                options[option] = getattr(scorers[name], param)
        return options
