"""Domain context for bare label names, found in the unlabeled documents themselves.

A short name is ambiguous on its own ("character", "body", "abuse"); written with its domain
("computing: character") it lands near the documents it is meant for. The domain is read off the corpus:
its most common content words that sit closest to the corpus' mean embedding. One word is a noisy pick,
so a label's vector is the mean over several such contexts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .encoders.base import Encoder

SAMPLE_DOCS = 2000  # documents read for the vocabulary; more changes little and costs time
# Most frequent content words considered. The few words that name a domain best ("computing", "compilers")
# are rarer than generic ones ("uses", "example"), so the nearest-to-centre pick needs a wide vocabulary:
# on foldoc (91 bare names, MiniLM) zero-shot P@1 36.2 with 200 words, 40.1 with 1,000 (39.4 on its train
# split, from 37.3), 40.1 with 5,000; the static encoder is unchanged (35.5 → 35.7). Much wider lets rare
# near-centre terms in ("macrophylla" on WordNet plants). Encoding 1,000 words costs MiniLM about 2 s, once.
CANDIDATE_WORDS = 1000
MIN_DOCS = 2  # a word in one document only says nothing about the corpus
WORD = re.compile(r"\b[^\W\d_]{3,}\b")  # letters only, three or more


def domain_words(texts: Sequence[str], vectors: np.ndarray, encoder: Encoder, n: int = 10,
                 random_state: int = 0) -> list[str]:
    """The `n` frequent corpus words nearest the corpus' mean embedding, best first (read off a sample of
    SAMPLE_DOCS documents drawn with `random_state`)."""
    rng = np.random.default_rng(random_state)
    pick = rng.choice(len(texts), size=min(len(texts), SAMPLE_DOCS), replace=False)
    # Document frequency by a plain regex and Counter: 2-3x faster than CountVectorizer, which this path
    # (every zero-shot run over bare names) would otherwise spend most of its own time in.
    frequency = Counter()
    for i in pick:
        frequency.update(set(WORD.findall(texts[i].lower())))
    common = [(-count, word) for word, count in frequency.items() if count >= MIN_DOCS and word not in ENGLISH_STOP_WORDS]
    words = [word for _, word in sorted(common)[:CANDIDATE_WORDS]]
    if not words:  # too few documents or words to say anything about the domain
        return []
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    order = np.argsort(-(encoder.encode(words) @ centre), kind="stable")
    return [words[i] for i in order[:n]]
