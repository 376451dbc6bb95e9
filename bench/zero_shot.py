"""Zero-shot benchmark: our default pipeline beside plain baselines, measured in the same run.

Baselines, with the same encoder and grouping-only labels left out: cosine between document and label name;
cosine to "name: description" (the peers' zs-desc); and that with an EM label prior estimated on the test
documents (Saerens et al., 3 iterations at temperature 0.05: ../shared/peers' zs-em, by its own em_prior).
Ours: taxonomist's default zero-shot pipeline (label text views, domain context for bare names, label
priors, hierarchy, neighbour propagation), adapting to the test documents themselves (no labels used).

Variants a user would have, built from a set (DATASET:VARIANT in --datasets): `grouping` (labels with
children marked not assignable, as a thesaurus' categories are), `mixed` (70% of the descriptions dropped at
random), `names` (every description dropped).

A third row adapts to the test documents plus the train split's texts (their labels unused), for the
data sets named by --with-train: more unlabeled text is what a user with a corpus has.

usage: python bench/zero_shot.py [--data ../shared/data] [--datasets foldoc,wordnet-taxonomy]
                                 [--encoders default,static] [--with-train foldoc] [--max-test N]
                                 [--scale 100000] [--json OUT] [--dev] [--ablate]
Accuracy runs take embeddings from bench/results/cache ("pipeline docs/s": our work alone). "e2e docs/s" is a
whole run over up to 2,000 test documents never seen (fresh embedding cache; the label set's own texts come
from the cache, as they do for a label set in use), "encoder share" the part of it inside the encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

import numpy as np  # noqa: E402

from taxonomist.classifier import Classifier  # noqa: E402
from taxonomist.encoders import CachedEncoder, get_encoder  # noqa: E402
from taxonomist.evaluate import evaluate  # noqa: E402
from taxonomist.labels import LabelSet, Label  # noqa: E402
from taxonomist.readers import read_documents, read_labels  # noqa: E402

CACHE = ROOT / "results" / "cache"
SPEED_SAMPLE = 2000  # uncached documents timed through the encoder
BASELINE = dict(views=("name",), context="", prior_iterations=0, propagation_alpha=0.0, hierarchy="off", self_training=0.0,
                mention_weight=0.0)
PLAIN_DESCRIPTION = BASELINE | dict(views=("description",))
EM_PRIOR = "peers' zs-em"  # computed by ../shared/peers' own em_prior over dense scores (see peers_em)
PEERS = ROOT.parent.parent / "shared" / "peers"
VARIANTS = ("grouping", "mixed", "names")
# --ablate: the default with one transductive step switched off, to see what each step gives on each set
ABLATIONS = {"no context": dict(context=""), "no mentions": dict(mention_weight=0.0), "no label prior": dict(prior_iterations=0),
             "no propagation": dict(propagation_alpha=0.0), "no self-training": dict(self_training=0.0),
             "hierarchy off": dict(hierarchy="off")}


def variant(data: Path, name: str, folder: Path) -> Path:
    """The data set `name` ("SET" or "SET:VARIANT") as a folder: the original, or a copy whose labels.jsonl is
    changed as VARIANTS say (train and test linked)."""
    base, _, kind = name.partition(":")
    if not kind:
        return data / base
    if kind not in VARIANTS:
        raise SystemExit(f"unknown variant {kind!r}: choose from {VARIANTS}")
    rows = [json.loads(line) for line in (data / base / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    parents = {p for r in rows for p in ([r["parent"]] if r.get("parent") else r.get("parents", []))}
    rng = np.random.default_rng(0)
    for r in rows:
        if kind == "grouping" and r["id"] in parents:
            r["assignable"] = False
        if kind == "names" or (kind == "mixed" and rng.random() < 0.7):
            r.pop("description", None)
    out = folder / name.replace(":", "-")
    out.mkdir(parents=True, exist_ok=True)
    (out / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for split in ("train.jsonl", "test.jsonl"):
        if not (out / split).exists():
            (out / split).symlink_to(data / base / split)
    return out


def reset_peak_rss() -> None:
    """Start the peak-memory count afresh (Linux: /proc/self/clear_refs), so that it covers what runs next and not
    the process so far; elsewhere the count goes on from the start."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> int:
    """Peak resident memory since `reset_peak_rss` (since the start where that cannot reset it)."""
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024)
    except (OSError, StopIteration):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peers_em(labels: LabelSet, texts: list[str], gold, encoder) -> dict:
    """The peers' zs-em with our encoder: dense cosine to "name: description" over the assignable labels, then
    ../shared/peers/run.py's own em_prior (Saerens EM on the test documents, T=0.05, 3 iterations)."""
    sys.path.insert(0, str(PEERS))
    from run import em_prior  # noqa: PLC0415 - the peers' code, not a copy of it

    start = time.perf_counter()
    keep = np.flatnonzero(labels.assignable)
    label_texts = [f"{labels[i].name}: {labels[i].description or ''}".strip(": ") for i in keep]
    scores = em_prior(encoder.encode(texts) @ encoder.encode(label_texts).T)
    top = np.argsort(-scores, axis=1)[:, :5]
    positions, ranked = keep[top], np.take_along_axis(scores, top, axis=1)
    seconds = time.perf_counter() - start
    m = evaluate(positions, ranked, gold, ks=(1, 3, 5)).metrics
    return {"P@1": m["P@1"], "P@3": m["P@3"], "P@5": m["P@5"], "nDCG@5": m["nDCG@5"], "pipeline_s": seconds,
            "contexts": [], "decisions": []}


def run_system(labels, texts, gold, encoder, params: dict | str, unlabeled: list[str] | None) -> dict:
    if params == EM_PRIOR:
        return peers_em(labels, texts, gold, encoder)
    start = time.perf_counter()
    clf = Classifier(labels, encoder=encoder, **params).fit(unlabeled=unlabeled)
    positions, scores = clf.rank(texts, 5)
    seconds = time.perf_counter() - start
    m = evaluate(positions, scores, gold, ks=(1, 3, 5)).metrics
    return {"P@1": m["P@1"], "P@3": m["P@3"], "P@5": m["P@5"], "nDCG@5": m["nDCG@5"], "pipeline_s": seconds,
            "contexts": list(clf.model_.contexts),
            "decisions": [f"{d.step}: {d.choice} ({d.why})" for d in clf.model_.decisions if d.why != "asked for"]}


class Recorded:
    """An encoder wrapper that keeps every text it was asked for and the seconds spent inside it."""

    def __init__(self, encoder) -> None:
        self.encoder, self.identity, self.dim = encoder, encoder.identity, encoder.dim
        self.static = getattr(encoder, "static", False)
        self.texts: set[str] = set()
        self.seconds = 0.0

    def encode(self, texts, show_progress=False):
        self.texts.update(texts)
        start = time.perf_counter()
        vectors = self.encoder.encode(texts, show_progress=show_progress)
        self.seconds += time.perf_counter() - start
        return vectors


class ColdDocuments:
    """Label texts from the warm cache (a label set is embedded once, then reused run after run); every other
    text through a fresh encoder and a fresh cache, as on a first run over new documents."""

    def __init__(self, warm, cold, label_texts: set[str]) -> None:
        self.warm, self.cold, self.label_texts = warm, cold, label_texts
        self.identity, self.dim, self.static = warm.identity, warm.dim, getattr(warm, "static", False)

    def encode(self, texts, show_progress=False):
        texts = list(texts)
        known = np.array([t in self.label_texts for t in texts], dtype=bool)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if known.any():
            out[known] = self.warm.encode([t for t, k in zip(texts, known) if k])
        if not known.all():
            out[~known] = self.cold.encode([t for t, k in zip(texts, known) if not k])
        return out


def end_to_end(labels, texts: list[str], spec: str, warm, params: dict, adapt: bool) -> dict:
    """A whole run over documents never seen (fit on them as unlabeled data, then rank them): docs/s, the
    share of it spent inside the encoder, and how many times faster the embedding cache makes a second pass."""
    import tempfile

    texts = texts[:SPEED_SAMPLE]
    recorder = Recorded(warm)
    Classifier(labels, encoder=recorder, **params).fit()  # which texts are the label set's own views
    with tempfile.TemporaryDirectory() as tmp:
        model = Recorded(get_encoder(spec, cache_dir=CACHE, use_cache=False))  # models stay in CACHE
        model.encode(["warm up"] * 8)
        model.seconds = 0.0
        # as get_encoder does: a disk cache for transformers, none for static encoders
        cold = model if model.static else CachedEncoder(model, tmp)
        encoder = ColdDocuments(warm, cold, recorder.texts)
        start = time.perf_counter()
        Classifier(labels, encoder=encoder, **params).fit(unlabeled=texts if adapt else None).rank(texts, 5)
        seconds = time.perf_counter() - start
        share = model.seconds / seconds
        row = {"e2e_docs_per_s": round(len(texts) / seconds, 1), "encoder_share": round(share, 3), "e2e_docs": len(texts)}
        if cold is not model:
            start = time.perf_counter()
            cold.encode(texts)
            cached = time.perf_counter() - start
            start = time.perf_counter()
            model.encode(texts)
            row["cache_speedup"] = round((time.perf_counter() - start) / cached)
    return row


def dev_split(folder: Path, labels: LabelSet) -> tuple[list, list]:
    """(dev, rest) of the train split: the fifth that stands in for the test split while constants are chosen."""
    # skip_invalid: foldoc's train split repeats a few ids; their texts are still good unlabeled data
    train = list(read_documents(folder / "train.jsonl", skip_invalid=True, label_set=labels))
    order = np.random.default_rng(0).permutation(len(train))
    cut = len(train) // 5
    dev = [train[i] for i in np.sort(order[:cut])]
    # as in wordnet-taxonomy's test split: no document that is itself a label (it finds its own label text)
    dev = [d for d in dev if not (d.id in labels and d.text.startswith(labels[labels.index_of(d.id)].name))]
    return dev, [train[i] for i in np.sort(order[cut:])]


def bench_dataset(data: Path, name: str, spec: str, max_test: int | None, with_train: bool, dev: bool = False,
                  ablate: bool = False) -> list[dict]:
    folder = variant(data, name, CACHE.parent / "variants")
    labels = read_labels(folder / "labels.jsonl")
    if dev:
        docs, rest = dev_split(folder, labels)
        docs = [d for d in docs if d.labels][:max_test]
    else:
        docs = list(read_documents(folder / "test.jsonl", label_set=labels))[:max_test]
    texts, gold = [d.text for d in docs], labels.matrix([d.labels or () for d in docs])
    encoder = get_encoder(spec, cache_dir=CACHE)
    encoder.encode(texts, show_progress=True)  # warm the cache: accuracy runs then time our pipeline alone
    systems = [("baseline: cosine to label name", BASELINE, None),
               ("baseline: cosine to name: description", PLAIN_DESCRIPTION, None),
               ("baseline: + EM label prior (peers' zs-em)", EM_PRIOR, texts), ("taxonomist zero-shot", {}, texts)]
    if ablate:
        systems += [(f"taxonomist zero-shot, {what}", params, texts) for what, params in ABLATIONS.items()]
    if with_train:
        train = ([d.text for d in rest] if dev else
                 [d.text for d in read_documents(folder / "train.jsonl", skip_invalid=True)])
        encoder.encode(train, show_progress=True)
        systems.append(("taxonomist zero-shot + train texts as unlabeled", {}, train + texts))
    rows = []
    for system, params, unlabeled in systems:
        r = run_system(labels, texts, gold, encoder, params, unlabeled)
        r.update(dataset=name, encoder=spec, system=system, n_docs=len(texts), n_labels=len(labels),
                 pipeline_docs_per_s=round(len(texts) / r["pipeline_s"], 1))
        if params in ({}, BASELINE) and ":" not in name and not dev:  # a user's run on new documents, and the plainest
            r.update(end_to_end(labels, texts, spec, encoder, params, adapt=unlabeled is texts))
        rows.append(r)
        print(f"  {name} {spec} {system}: P@1 {r['P@1']}  [{r['pipeline_s']:.1f}s]", file=sys.stderr, flush=True)
    return rows


class RandomEncoder:
    """Fixed random unit vectors per text: label scale without paying for a real encoder."""

    identity, dim = "random", 384

    def encode(self, texts, show_progress=False):
        rng = np.random.default_rng(abs(hash(tuple(texts[:3]))) % 2**32)
        v = rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_scale(n_labels: int, n_docs: int = 4000) -> dict:
    """Ranking speed at `n_labels` labels, encoding excluded (random vectors stand in for the encoder)."""
    labels = LabelSet([Label(f"l{i}", f"label {i}", parents=(f"l{(i - 1) // 10}",) if i else ()) for i in range(n_labels)])
    texts = [f"document {i}" for i in range(n_docs)]
    clf = Classifier(labels, encoder=RandomEncoder(), context="").fit()
    start = time.perf_counter()
    clf.rank(texts, 5)
    seconds = time.perf_counter() - start
    return {"n_labels": n_labels, "n_docs": n_docs, "rank_docs_per_s": round(n_docs / seconds, 1),
            "peak_rss_mb": peak_rss_mb()}


def print_table(rows: list[dict]) -> None:
    cols = ["P@1", "P@3", "P@5", "nDCG@5", "pipeline_docs_per_s", "e2e_docs_per_s", "encoder_share", "cache_speedup"]
    print("\n| data | encoder | system | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['dataset']} ({r['n_labels']} labels, {r['n_docs']} docs) | {r['encoder']} | {r['system']} | "
              + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    by = {}
    for r in rows:
        by.setdefault((r["dataset"], r["encoder"]), []).append(r)
    print()
    for (data, enc), group in by.items():
        best = max((r for r in group if r["system"].startswith("baseline")), key=lambda r: (r["P@1"], r["nDCG@5"]))
        for r in group:
            if r["system"].startswith("baseline"):
                continue
            print(f"{data} / {enc} / {r['system']}: P@1 {r['P@1']} vs best baseline ({best['system'][10:]}) "
                  f"{best['P@1']} ({r['P@1'] - best['P@1']:+.2f}), nDCG@5 {r['nDCG@5']} vs {best['nDCG@5']} "
                  f"({r['nDCG@5'] - best['nDCG@5']:+.2f}); context words: {', '.join(r['contexts']) or 'none'}; "
                  + "; ".join(r["decisions"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data"))
    ap.add_argument("--datasets", default="foldoc,wordnet-taxonomy,gcide,emoji,emoji:grouping,"
                                              "wordnet-taxonomy:mixed,wordnet-taxonomy:names")
    ap.add_argument("--encoders", default="default,static")
    ap.add_argument("--with-train", default="foldoc", help="data sets whose train texts also serve as unlabeled data")
    ap.add_argument("--max-test", type=int)
    ap.add_argument("--scale", type=int, default=100_000, help="label count for the ranking-speed test (0: skip)")
    ap.add_argument("--json", help="write all rows here")
    ap.add_argument("--dev", action="store_true", help="choosing constants: rank a fifth of each train split "
                    "instead of the test split, which is not read (the rest of train serves --with-train)")
    ap.add_argument("--ablate", action="store_true", help="add rows with one transductive step switched off")
    a = ap.parse_args()
    rows = []
    for name in a.datasets.split(","):
        for spec in a.encoders.split(","):
            rows += bench_dataset(Path(a.data), name, spec, a.max_test, name in a.with_train.split(","), a.dev,
                                  a.ablate)
    print_table(rows)
    scale = bench_scale(a.scale) if a.scale else None
    if scale:
        print(f"\nscale: {scale['n_labels']:,} labels, {scale['n_docs']:,} docs: {scale['rank_docs_per_s']} docs/s "
              f"ranking (encoding excluded), peak RSS {scale['peak_rss_mb']} MB")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "scale": scale}, indent=1))


if __name__ == "__main__":
    main()
