"""Tokenising texts piece by piece: each distinct space-separated piece is tokenised once, then remembered."""

from __future__ import annotations

import json
import re
import threading
from itertools import chain, filterfalse, repeat

import numpy as np

# Pieces and tokens remembered (measured: 35 MB at the piece bound; the token bound caps long pieces
# and whole texts); past either bound the memo starts afresh.
MAX_PIECES, MAX_TOKENS = 1 << 17, 1 << 21
_GROUP = 1024  # pieces per string handed to the BPE: several strings let it use every core
_SPACE = "\u2581"  # SentencePiece's visible space
_SENTENCEPIECE_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "Prepend", "prepend": _SPACE},
        {"type": "Replace", "pattern": {"String": " "}, "content": _SPACE},
    ],
}
_PUNCT = r"!-/:-@\[-`{-~"  # ASCII punctuation, which BERT's pre-tokenizer isolates


class _Bert:
    """BertNormalizer + BertPreTokenizer: the normaliser maps characters one by one (control characters,
    CJK padding, accents, case) and the pre-tokenizer ends words at whitespace and isolates each ASCII
    punctuation mark, so units of a piece cut there are tokenised independently, each distinct one
    once. A unit already in normal form (lower-case ASCII letters and digits, or one mark) needs
    WordPiece alone, and none at all if it is in the vocabulary."""

    @staticmethod
    def fits(tokenizer) -> bool:
        from tokenizers.normalizers import BertNormalizer
        from tokenizers.pre_tokenizers import BertPreTokenizer

        normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
        return isinstance(normalizer, BertNormalizer) and isinstance(pre_tokenizer, BertPreTokenizer)

    def __init__(self, tokenizer) -> None:
        from tokenizers import Tokenizer

        self.lowercase = json.loads(tokenizer.normalizer.__getstate__())["lowercase"]
        self.units_of_ = re.compile(f"[{_PUNCT}]|[^{_PUNCT} \t\n\r]+").findall
        self.plain_ = re.compile(f"[{'a-z' if self.lowercase else 'A-Za-z'}0-9]+|[{_PUNCT}]").fullmatch
        self.model_ = Tokenizer(tokenizer.model)
        self.vocab_ = tokenizer.get_vocab(with_added_tokens=False)
        self.max_chars_ = tokenizer.model.max_input_chars_per_word
        self.full_ = tokenizer
        self.forget()

    def forget(self) -> None:
        self.units_: dict[str, list[int]] = {}  # unit -> its tokens

    def pieces(self, texts: list[str]) -> list[list[str]]:
        if self.lowercase:  # Python's lower() is the normaliser's on ASCII (beyond: final sigma, special cases)
            texts = [text.lower() if text.isascii() else text for text in texts]
        return [text.split(" ") for text in texts]

    def tokens(self, pieces: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token count of each piece, all their tokens)."""
        per_piece = list(map(self.units_of_, pieces))
        units = list(chain.from_iterable(per_piece))
        known = self.units_
        fresh = list(filterfalse(known.__contains__, dict.fromkeys(units)))
        if fresh:
            known.update(zip(fresh, self._tokenize(fresh)))
        unit_lengths, tokens = _flatten(list(map(known.__getitem__, units)))
        ends = np.concatenate([[0], np.cumsum(unit_lengths)])
        bounds = np.concatenate([[0], np.cumsum(np.fromiter(map(len, per_piece), np.int64, len(per_piece)))])
        return ends[bounds[1:]] - ends[bounds[:-1]], tokens

    def _tokenize(self, units: list[str]) -> list[list[int]]:
        seqs: list[list[int]] = [[]] * len(units)
        wordpiece, full = [], []
        for i, unit in enumerate(units):
            if self.plain_(unit) is None:
                full.append(i)
            elif unit in self.vocab_ and len(unit) <= self.max_chars_:  # WordPiece first tries the whole word
                seqs[i] = [self.vocab_[unit]]
            else:
                wordpiece.append(i)
        for tokenizer, where in ((self.model_, wordpiece), (self.full_, full)):
            for i, seq in zip(where, _ids(tokenizer, [units[i] for i in where])):
                seqs[i] = seq
        return seqs


class _SentencePiece:
    """Normaliser "prepend ▁, spaces to ▁", no pre-tokenizer, BPE: a text is one "word", yet no token
    of the vocabulary holds "▁" after another character, so no merge crosses the start of a run of
    "▁": piece p of a text gives the tokens of "▁" + p, provided the text neither starts with a space
    nor holds two in a row or a "▁" (one that does is a piece of its own, normalised whole).

    Pieces go to the BPE many to a string, joined by spaces (which normalised pieces never hold): it
    costs far less per piece so. A space no token holds becomes its byte-fallback token alone,
    marking where one piece's tokens end."""

    @staticmethod
    def fits(tokenizer) -> bool:
        from tokenizers.models import BPE

        normalizer, model, vocab = tokenizer.normalizer, tokenizer.model, tokenizer.get_vocab()
        return (
            normalizer is not None
            and json.loads(normalizer.__getstate__()) == _SENTENCEPIECE_NORMALIZER
            and tokenizer.pre_tokenizer is None
            and isinstance(model, BPE)
            and not any(_SPACE in token.lstrip(_SPACE) for token in vocab)
            # unknown characters fused into one token could straddle pieces, unless bytes stand in for them
            and (not model.fuse_unk or model.byte_fallback and all(f"<0x{b:02X}>" in vocab for b in range(256)))
        )

    def __init__(self, tokenizer) -> None:
        from tokenizers import Tokenizer

        vocab = tokenizer.get_vocab()
        self.model_ = Tokenizer(tokenizer.model)
        spaced = tokenizer.model.byte_fallback and not any(" " in token for token in vocab)
        self.space_id_ = vocab.get("<0x20>") if spaced else None

    def forget(self) -> None:
        pass  # remembers nothing of its own

    @staticmethod
    def pieces(texts: list[str]) -> list[list[str]]:
        return [
            [] if not text else [text] if text[0] == " " or "  " in text or _SPACE in text else text.split(" ")
            for text in texts
        ]

    def tokens(self, pieces: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token count of each piece, all their tokens)."""
        normal = list(map(_SPACE.__add__, map(str.replace, pieces, repeat(" "), repeat(_SPACE))))
        if self.space_id_ is None:
            return _flatten(_ids(self.model_, normal))
        lengths, tokens = [], []
        groups = [" ".join(normal[start : start + _GROUP]) for start in range(0, len(normal), _GROUP)]
        for ids in _ids(self.model_, groups):
            ids = np.asarray(ids, dtype=np.int64)
            space = ids == self.space_id_
            lengths.append(np.diff(np.concatenate([[-1], np.flatnonzero(space), [len(ids)]])) - 1)
            tokens.append(ids[~space])
        return np.concatenate(lengths), np.concatenate(tokens)


class PieceTokenizer:
    """Token ids of texts (no special tokens), each distinct space-separated piece tokenised once.

    A Hugging Face tokenizer spends most of its time normalising and splitting whole texts, yet for the
    static encoders' tokenizers (BERT WordPiece, SentencePiece-style BPE: see _Bert, _SentencePiece)
    a text's tokens are those of its pieces in order. Texts holding an added token (matched before
    normalising) and all texts of any other tokenizer go to the tokenizer whole. The tokenizer's
    truncation cuts each text's joined tokens; its padding is ignored.
    """

    def __init__(self, tokenizer) -> None:
        from tokenizers import Tokenizer

        truncation = tokenizer.truncation or {}
        self.max_length_ = truncation.get("max_length")
        self.from_left_ = truncation.get("direction") == "left"
        if tokenizer.padding is not None or truncation:  # a copy that pads nothing and keeps every token
            tokenizer = Tokenizer.from_str(tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
        self.tokenizer = tokenizer
        kind = next((kind for kind in (_Bert, _SentencePiece) if kind.fits(tokenizer)), None)
        self.scheme_ = kind(tokenizer) if kind else None
        self.added_ = [token.content for token in tokenizer.get_added_tokens_decoder().values()]
        self._lock = threading.Lock()
        self._forget()

    def __getstate__(self) -> dict:  # copies and pickles start with an empty memo, and a lock of their own
        memo = ("_lock", "rows_", "lengths_", "starts_", "tokens_")
        return {key: value for key, value in self.__dict__.items() if key not in memo}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        if self.scheme_:
            self.scheme_.forget()
        self.rows_ = _Rows()  # piece -> its row in the store below
        self.lengths_ = np.zeros(0, np.int64)  # tokens of each row
        self.starts_ = np.zeros(0, np.int64)  # where each row's tokens start in tokens_
        self.tokens_ = np.zeros(0, np.int64)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(every text's token ids, one text after another; offsets where each text starts, then the end),
        i.e. a CSR matrix's indices and indptr."""
        with self._lock:
            if len(self.lengths_) > MAX_PIECES or len(self.tokens_) > MAX_TOKENS:
                self._forget()
            whole = self._whole(texts)
            split = texts
            if whole:
                alone = set(whole)
                split = [text for i, text in enumerate(texts) if i not in alone]
            per_text = np.ones(len(texts), np.int64)  # pieces of each text; a whole text is one
            rows = np.zeros(0, np.int64)
            if split:
                pieces = self.scheme_.pieces(split)
                per_text[np.isin(np.arange(len(texts)), whole, invert=True)] = list(map(len, pieces))
                rows = self._rows(list(chain.from_iterable(pieces)))
            piece_ptr = np.concatenate([[0], np.cumsum(per_text)])
            if whole:  # each whole text becomes a row of its own, at its place among the pieces
                first = self._store(*_flatten(_ids(self.tokenizer, [texts[i] for i in whole])))
                alone_at = np.zeros(piece_ptr[-1], dtype=bool)
                alone_at[piece_ptr[whole]] = True
                merged = np.empty(piece_ptr[-1], np.int64)
                merged[~alone_at] = rows
                merged[alone_at] = first + np.arange(len(whole))
                rows = merged
            return self._expand(rows, piece_ptr)

    def _whole(self, texts: list[str]) -> list[int]:
        """Positions of the texts to tokenise whole."""
        if self.scheme_ is None:
            return list(range(len(texts)))
        joined = "\n".join(texts)
        found = [token for token in self.added_ if token in joined]  # rare: only then look text by text
        return [i for i, text in enumerate(texts) if any(token in text for token in found)] if found else []

    def _rows(self, pieces: list[str]) -> np.ndarray:
        """The store's row of each piece, tokenising those it lacks."""
        known = self.rows_
        known.first, known.new = len(self.lengths_), []
        rows = np.fromiter(map(known.__getitem__, pieces), np.int64, len(pieces))
        if known.new:
            try:
                self._store(*self.scheme_.tokens(known.new))
            except BaseException:  # rows promised to the new pieces do not exist
                self._forget()
                raise
        return rows

    def _store(self, lengths: np.ndarray, tokens: np.ndarray) -> int:
        """Appends rows to the store; returns the first one's number."""
        first = len(self.lengths_)
        self.starts_ = np.concatenate([self.starts_, len(self.tokens_) + np.cumsum(lengths) - lengths])
        self.lengths_ = np.concatenate([self.lengths_, lengths])
        self.tokens_ = np.concatenate([self.tokens_, tokens])
        return first

    def _expand(self, rows: np.ndarray, piece_ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens of these rows in order, cut per text to the tokenizer's max length (from its end
        if it truncates on the left)."""
        sizes = self.lengths_[rows]
        ends = np.cumsum(sizes)
        total = int(ends[-1]) if len(ends) else 0
        tokens = self.tokens_[np.repeat(self.starts_[rows] - (ends - sizes), sizes) + np.arange(total)]
        indptr = np.concatenate([[0], ends])[piece_ptr]
        limit = self.max_length_
        counts = np.diff(indptr)
        if limit is not None and (counts > limit).any():
            rank = np.arange(len(tokens)) - np.repeat(indptr[:-1], counts)
            if self.from_left_:
                rank = np.repeat(counts - 1, counts) - rank
            tokens = tokens[rank < limit]
            indptr = np.concatenate([[0], np.cumsum(np.minimum(counts, limit))])
        return tokens, indptr


class _Rows(dict):
    """piece -> row; a piece not yet known gets the row after `first` and those given before it,
    and joins `new`: one pass over a batch's pieces finds every row."""

    first = 0
    new: list[str] = []

    def __missing__(self, piece: str) -> int:
        row = self[piece] = self.first + len(self.new)
        self.new.append(piece)
        return row


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return [encoding.ids for encoding in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def _flatten(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(length of each sequence, all their items one after another)."""
    lengths = np.fromiter(map(len, seqs), np.int64, len(seqs))
    return lengths, np.fromiter(chain.from_iterable(seqs), np.int64, int(lengths.sum()))
