"""Supervised benchmark: taxonomist trained on labelled examples, beside the XMC peers run in the same script.

Two tables per data set:
1. Full training data: our fused model (zero-shot + prototypes + ridge head + nearest examples + sparse XMC,
   weighed by a fusion learnt on held-out examples) beside the best of Omikuji (Parabel, Bonsai) and
   napkinXC (PLT) on TF-IDF, run by ../shared/peers/run.py in the peers' venv: P@1/3/5, nDCG@5, train
   seconds, predict docs/s, model size.
2. A learning curve at 1, 4 and 16 examples per label and the full data: ours beside a prototype-only
   baseline (cosine to prototypes, no fusion, no unlabeled data), with our zero-shot figure as the start.
   Where the encoder is fine-tuned on the examples (at most 1,000 of them, see config.TrainConfig),
   the point is also run with it frozen, and its "train s" includes the tuning and encoding every text through
   the tuned encoder, which has no cache. `--seeds 0,1,2` runs each few-shot point once per random state (the
   held-out folds, the fusion's split and the encoder's tuning follow it) and shows the mean and each P@1.

"train s" and "predict docs/s" exclude encoding (embeddings come from the cache in bench/results/cache); TF-IDF
is inside ours but outside the peers' (their features are built before the clock starts). "e2e docs/s" adds
encoding at the uncached rate shown in the heading (the peers': TF-IDF or MiniLM featurising).
"peak MB" is the process's peak resident memory while that model trained and ranked (Linux; elsewhere, since the
process started).

usage: python bench/supervised.py [--data ../shared/data] [--datasets foldoc,wordnet-taxonomy]
                                  [--encoder default] [--shots 1,4,16,full] [--peers parabel,bonsai,plt]
                                  [--peers-python /tmp/peers-venv/bin/python] [--max-test N] [--json OUT]
                                  [--plot learning_curves.png] [--unseen] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

import numpy as np  # noqa: E402

from taxonomist.classifier import Classifier  # noqa: E402
from taxonomist.encoders import get_encoder  # noqa: E402
from taxonomist.encoders.fine_tune import is_tuned  # noqa: E402
from taxonomist.evaluate import evaluate  # noqa: E402
from taxonomist.readers import read_documents, read_labels  # noqa: E402
from taxonomist.scorers import Batch, FitInput  # noqa: E402
from taxonomist.scorers.label_text import LabelTextScorer  # noqa: E402
from taxonomist.scorers.prototype import PrototypeScorer  # noqa: E402
from zero_shot import CACHE, peak_rss_mb, reset_peak_rss  # noqa: E402

PEERS = ROOT.parent.parent / "shared" / "peers" / "run.py"


def few_shot(docs, n: int, seed: int = 0) -> list:
    """Up to n documents per label (a document counts for all of its labels), drawn at random."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        for label in doc.labels:
            by_label.setdefault(label, []).append(i)
    keep: set[int] = set()
    for members in by_label.values():
        keep.update(rng.choice(members, min(n, len(members)), replace=False).tolist())
    return [docs[i] for i in sorted(keep)]


def scores(positions, values, gold, plain=None) -> dict:
    """P@k and nDCG@5; with `plain` (a mask of the test documents), P@1 on those documents alone too."""
    m = evaluate(positions, values, gold, ks=(1, 3, 5)).metrics
    out = {k: m[k] for k in ("P@1", "P@3", "P@5", "nDCG@5")}
    if plain is not None:
        out["P@1 plain"] = evaluate(positions[plain], values[plain], gold[plain], ks=(1,)).metrics["P@1"]
    return out


def run_ours(labels, train, test_texts, gold, encoder, save: bool = False, plain=None, unseen: bool = False,
             fine_tune: str = "auto", random_state: int = 0) -> dict:
    """Trained on `train` with the test texts as unlabeled data (label priors, neighbours, self-training), as in
    bench/zero_shot.py's pipeline, which is the point without examples. The clock includes learning from the unlabeled texts; the peers use none. `unseen`: trained
    without them, so ranking treats the test texts as new ones (adapting to the batch as it is ranked)."""
    reset_peak_rss()
    start = time.perf_counter()
    clf = Classifier(labels, encoder=encoder, fine_tune=fine_tune, random_state=random_state)
    clf.fit([d.text for d in train], [d.labels for d in train], unlabeled=None if unseen else test_texts)
    train_s = time.perf_counter() - start
    size = {}
    if save:  # as trained: ranking densifies the sparse model's weights in memory (see scorers/sparse_xmc.py)
        with tempfile.TemporaryDirectory() as tmp:
            clf.save(Path(tmp) / "model")
            size["model_mb"] = round(sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20, 1)
    start = time.perf_counter()
    positions, values = clf.rank(test_texts, 5)
    return scores(positions, values, gold, plain) | size | {
        "train_s": round(train_s, 1), "predict_docs_per_s": round(len(test_texts) / (time.perf_counter() - start), 1),
        "train_docs": len(train), "tuned": is_tuned(clf.model_.encoder.identity), "peak_rss_mb": peak_rss_mb()}


def run_seeds(seeds: list[int], *args, **kwargs) -> dict:
    """`run_ours` once per random state (the held-out folds, the fusion's split, the encoder's tuning): each
    figure's mean over the seeds, and P@1 by seed."""
    runs = [run_ours(*args, **kwargs, random_state=seed) for seed in seeds]
    if len(runs) == 1:
        return runs[0]
    mean = {key: round(float(np.mean([r[key] for r in runs])), 2) for key, value in runs[0].items()
            if isinstance(value, float)}
    return runs[0] | mean | {"P@1 by seed": [r["P@1"] for r in runs],
                             "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def run_prototypes(labels, train, test_texts, gold, encoder) -> dict:
    """The baseline: cosine to label prototypes (label text blended with the mean of its examples), alone."""
    start = time.perf_counter()
    text = LabelTextScorer(("name", "description", "aliases")).fit(FitInput(labels=labels, encoder=encoder))
    examples = FitInput(label_vectors=text.label_vectors, vectors=encoder.encode([d.text for d in train]),
                        targets=labels.matrix([d.labels or () for d in train]))
    prototypes = PrototypeScorer().fit(examples)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    positions, values = prototypes.shortlist(Batch(test_texts, encoder.encode(test_texts)), 5)
    return scores(positions, values, gold) | {"train_s": round(train_s, 1), "train_docs": len(train),
                                               "predict_docs_per_s": round(len(test_texts) / (time.perf_counter() - start), 1)}


def encode_rate(spec: str, texts: list[str], sample: int = 1000) -> float:
    """Uncached docs/s of the encoder on a sample of the texts."""
    encoder = get_encoder(spec, cache_dir=CACHE, use_cache=False)
    encoder.encode(["warm up"] * 8)
    chosen = texts[:sample]
    start = time.perf_counter()
    encoder.encode(chosen)
    return len(chosen) / (time.perf_counter() - start)


def run_peers(data: Path, names: str, python: str, max_test: int | None) -> list[dict]:
    if not Path(python).exists():
        print(f"peers skipped: {python} missing (run bash ../shared/peers/setup.sh)", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peers.json"
        cmd = [python, str(PEERS), str(data), "--only", names, "--json", str(out)]
        cmd += ["--max-test", str(max_test)] if max_test else []
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        return json.loads(out.read_text())["systems"]


def bench_dataset(data: Path, spec: str, shots: list[str], peers: str, peers_python: str, max_test: int | None,
                  unseen: bool = False, seeds: tuple[int, ...] = (0,)) -> dict:
    labels = read_labels(data / "labels.jsonl")
    train = [d for d in read_documents(data / "train.jsonl", skip_invalid=True, label_set=labels) if d.labels]
    test = list(read_documents(data / "test.jsonl", skip_invalid=True, label_set=labels))[:max_test]
    test_texts, gold = [d.text for d in test], labels.matrix([d.labels or () for d in test])
    # Test documents that are themselves labels of the set (WordNet: 20% of the test synsets are labels, filed
    # under their parent and grandparent): a model can learn where such a document goes from the label set's
    # own structure, so P@1 is also shown on the other documents ("plain").
    label_ids = set(labels.ids)
    plain = np.array([d.id not in label_ids for d in test])
    plain = None if plain.all() else plain
    encoder = get_encoder(spec, cache_dir=CACHE)
    encoder.encode([d.text for d in train] + test_texts, show_progress=True)  # warm the cache
    result = {"dataset": data.name, "encoder": spec, "n_labels": len(labels), "n_train": len(train),
              "n_test": len(test), "n_plain": None if plain is None else int(plain.sum()),
              "encode_docs_per_s": round(encode_rate(spec, test_texts), 1)}
    result["peers"] = run_peers(data, peers, peers_python, max_test) if peers else []
    # Zero-shot first: it embeds the label texts, which the trained points' "train s" then finds in the cache.
    curve = [{"shots": 0, "ours": run_ours(labels, [], test_texts, gold, encoder, plain=plain)}]
    full = run_ours(labels, train, test_texts, gold, encoder, save=True, plain=plain)
    full["e2e_docs_per_s"] = round(1 / (1 / result["encode_docs_per_s"] + 1 / full["predict_docs_per_s"]), 1)
    result["full"] = full
    print(f"  {data.name} full: {full}", file=sys.stderr, flush=True)
    if unseen:
        result["unseen"] = run_ours(labels, train, test_texts, gold, encoder, unseen=True)
    for n in shots:
        subset = train if n == "full" else few_shot(train, int(n))
        ours = full if n == "full" else run_seeds(seeds, labels, subset, test_texts, gold, encoder, plain=plain)
        point = {"shots": n, "ours": ours, "prototypes": run_prototypes(labels, subset, test_texts, gold, encoder)}
        if ours["tuned"]:  # what the fine-tuning adds: the same point with the encoder frozen
            point["frozen"] = run_seeds(seeds, labels, subset, test_texts, gold, encoder, plain=plain, fine_tune="off")
        curve.append(point)
        print(f"  {data.name} {n}-shot: ours {point['ours']['P@1']} prototypes {point['prototypes']['P@1']}",
              file=sys.stderr, flush=True)
    result["curve"] = curve
    return result


def print_tables(results: list[dict]) -> None:
    for r in results:
        print(f"\n## {r['dataset']} ({r['n_labels']:,} labels, {r['n_train']:,} train, {r['n_test']:,} test; "
              f"encoder {r['encoder']}, {r['encode_docs_per_s']} docs/s uncached)\n")
        print("| system | P@1 | P@3 | P@5 | nDCG@5 | train s | predict docs/s | e2e docs/s | model MB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for p in r["peers"]:
            print(f"| {p['system']} | {p['P@1']} | {p['P@3']} | {p['P@5']} | {p['nDCG@5']} | {p.get('train_s')} | "
                  f"{p.get('predict_docs_per_s')} | {p.get('e2e_docs_per_s')} | |")
        f = r["full"]
        print(f"| **taxonomist** | {f['P@1']} | {f['P@3']} | {f['P@5']} | {f['nDCG@5']} | {f['train_s']} | "
              f"{f['predict_docs_per_s']} | {f['e2e_docs_per_s']} | {f.get('model_mb')} |")
        if "unseen" in r:
            u = r["unseen"]
            print(f"\nTrained without unlabeled texts, on the test texts as new ones: P@1 {u['P@1']}, "
                  f"{u['predict_docs_per_s']} docs/s")
        if r.get("n_plain"):
            print(f"\nOn the {r['n_plain']:,} test documents that are not labels of the set: ours P@1 {f['P@1 plain']}")
        best = max(r["peers"], key=lambda p: p["P@1"], default=None)
        if best:
            print(f"\nP@1 {f['P@1'] - best['P@1']:+.2f} and nDCG@5 {f['nDCG@5'] - best['nDCG@5']:+.2f} against the "
                  f"best peer ({best['system']}); train time ratio {f['train_s'] / max(best.get('train_s') or 1e-9, 1e-9):.2f}; "
                  f"peak RSS while training and ranking {f['peak_rss_mb']} MB")
        print("\n| examples per label | train docs | ours P@1 | ours P@1 plain | ours nDCG@5 | train s | peak MB | "
              "ours, encoder frozen: P@1 / train s | prototypes P@1 | prototypes nDCG@5 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for point in r["curve"]:
            o, p, frozen = point["ours"], point.get("prototypes", {}), point.get("frozen")
            untuned = f"{_p1(frozen)} / {frozen['train_s']}" if frozen else "(not tuned)"
            print(f"| {point['shots']} | {o['train_docs']} | {_p1(o)} | {o.get('P@1 plain', '')} | {o['nDCG@5']} | "
                  f"{o['train_s']} | {o['peak_rss_mb']} | {untuned} | {p.get('P@1', '')} | {p.get('nDCG@5', '')} |")
        zero = r["curve"][0]["ours"]
        four = next((pt["ours"] for pt in r["curve"] if pt["shots"] == "4"), None)
        if four is not None:
            by_seed = four.get("P@1 by seed", [four["P@1"]])
            print(f"\n4 examples per label: P@1 {four['P@1']} vs zero-shot {zero['P@1']} "
                  f"({four['P@1'] - zero['P@1']:+.2f} points" + (f"; mean of {len(by_seed)} seeds, the lowest "
                  f"{min(by_seed) - zero['P@1']:+.2f})" if len(by_seed) > 1 else ")"))
            if "P@1 plain" in four:
                print(f"on the documents that are not labels: {four['P@1 plain']} vs {zero['P@1 plain']} "
                      f"({four['P@1 plain'] - zero['P@1 plain']:+.2f} points)")


def _p1(result: dict) -> str:
    """P@1, and by seed when there are several."""
    by_seed = result.get("P@1 by seed")
    return f"{result['P@1']} ({' / '.join(map(str, by_seed))})" if by_seed else str(result["P@1"])


def plot_curves(results: list[dict], path: Path) -> None:
    """P@1 against examples per label, one panel per data set: ours, prototypes alone, our zero-shot point and
    the best peer on the full data, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * len(results), 4.2))
    FigureCanvasAgg(figure)
    for i, r in enumerate(results):
        axes = figure.add_subplot(1, len(results), i + 1)
        points = [p for p in r["curve"] if p["shots"] != 0]
        x = list(range(len(points)))  # evenly spaced: 1, 4, 16, full
        axes.plot(x, [p["ours"]["P@1"] for p in points], "o-", label="taxonomist")
        if r.get("n_plain") and r["n_plain"] < 0.95 * r["n_test"]:
            axes.plot(x, [p["ours"]["P@1 plain"] for p in points], "o:", label="taxonomist, docs that are not labels")
            axes.axhline(r["curve"][0]["ours"]["P@1 plain"], color="grey", linestyle="-.", linewidth=0.8,
                         label="zero-shot, docs that are not labels")
        axes.plot(x, [p["prototypes"]["P@1"] for p in points], "s--", label="prototypes alone")
        axes.axhline(r["curve"][0]["ours"]["P@1"], color="grey", linestyle=":", label="taxonomist zero-shot")
        best = max(r["peers"], key=lambda p: p["P@1"], default=None)
        if best:
            axes.plot([x[-1]], [best["P@1"]], "k^", label=f"{best['system']} (full data)")
        axes.set_xticks(x, [str(p["shots"]) for p in points])
        axes.set_xlabel("examples per label")
        axes.set_ylabel("P@1 (%)")
        axes.set_title(f"{r['dataset']} ({r['n_labels']:,} labels, {r['encoder']})")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data"))
    ap.add_argument("--datasets", default="foldoc,wordnet-taxonomy")
    ap.add_argument("--encoder", default="default")
    ap.add_argument("--shots", default="1,4,16,full")
    ap.add_argument("--peers", default="parabel,bonsai,plt", help="peer systems to run ('' for none)")
    ap.add_argument("--peers-python", default=os.environ.get("PEERS_PYTHON", "/tmp/peers-venv/bin/python"))
    ap.add_argument("--max-test", type=int)
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--plot", help="draw the learning curves into this PNG")
    ap.add_argument("--seeds", default="0",
                    help="random states for the few-shot points (mean and each shown): the held-out folds, the "
                         "fusion's split and the encoder's tuning change with it")
    ap.add_argument("--unseen", action="store_true",
                    help="also time prediction on texts never seen (trained without unlabeled texts)")
    a = ap.parse_args()
    results = [bench_dataset(Path(a.data) / name, a.encoder, a.shots.split(","), a.peers, a.peers_python, a.max_test,
                             a.unseen, tuple(int(s) for s in a.seeds.split(","))) for name in a.datasets.split(",")]
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    if a.plot:
        plot_curves(results, Path(a.plot))
    print_tables(results)


if __name__ == "__main__":
    main()
