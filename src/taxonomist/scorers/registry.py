"""Every scorer by name. Adding one is its own module and one line here; the model, the trainer, persistence
and the contract test (tests/test_scorer_contract.py) find it through this table. Order matters: it is the
order of the fusion's features."""

from __future__ import annotations

from .base import Scorer
from .label_text import LabelTextScorer
from .lexical import LexicalScorer
from .linear import LinearScorer
from .neighbours import NeighbourScorer
from .prototype import PrototypeScorer
from .sparse_xmc import SparseXMCScorer

SCORERS: dict[str, type[Scorer]] = {cls.name: cls for cls in (
    LabelTextScorer,
    LexicalScorer,
    PrototypeScorer,
    LinearScorer,
    NeighbourScorer,
    SparseXMCScorer,
)}
