"""Confidence benchmark: calibrated probabilities and conformal label sets on every data set.

Per data set, a model is trained on the train split (the test texts as unlabeled data, as bench/supervised.py
does) and every test document's candidates are scored once. Then, `--splits` times, the test documents are
split at random into a calibration half and an evaluation half: the model is calibrated on the first
(`taxonomist calibrate`'s path) and measured on the second:
- ECE@1, ECE@5 (15 bins) and Brier@1/@5 of the raw scores taken as probabilities and of the calibrated ones;
  P@1 ranked by each;
- conformal sets at each alpha (each true label, Mondrian by frequency band; each true label, one threshold; all
  of a document's labels; false-negative rate): coverage and sizes, coverage by band, beside each band's share of
  gold labels among the candidates (what caps its coverage);
- beside two baselines measured on the same half: the smallest fixed top-k cut whose coverage reaches the
  conformal sets' ("same coverage"), and a global 0.5 threshold on the raw scores.
The model's own calibration from its out-of-fold record (no calibration documents) is measured on all the test
documents. `--mapie` cross-checks the per-label sets on foldoc with MAPIE's multi-label risk control (recall).

usage: python bench/confidence.py [--data ../shared/data] [--datasets foldoc,wordnet-taxonomy,gcide,emoji]
                                  [--encoder default] [--splits 20] [--alphas 0.05,0.1,0.2] [--json OUT] [--mapie]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

import numpy as np  # noqa: E402

from taxonomist.calibrate import (GUARANTEES, METHODS, Calibration, Calibrator, Conformal, Outcomes,  # noqa: E402
                                   band_of)
from taxonomist.classifier import Classifier  # noqa: E402
from taxonomist.encoders import get_encoder  # noqa: E402
from taxonomist.errors import NotSupportedError  # noqa: E402
from taxonomist.readers import read_documents, read_labels  # noqa: E402
from taxonomist.reliability import BAND_NAMES, ece, set_quality  # noqa: E402
from taxonomist.sparse import csr_lookup  # noqa: E402
from zero_shot import CACHE  # noqa: E402

PER_LABEL = ("label", "pooled")  # the guarantees compared with a top-k cut of the same coverage


def probability_metrics(probabilities: np.ndarray, right: np.ndarray, valid: np.ndarray) -> dict:
    out = {}
    for k in (1, 5):
        v = valid[:, :k]
        p, r = probabilities[:, :k][v], right[:, :k][v]
        out[f"ECE@{k}"] = ece(p, r)
        out[f"ECE@{k} floor"] = ece_floor(p)
        out[f"Brier@{k}"] = float(np.mean((p - r) ** 2))
    return out


def ece_floor(probabilities: np.ndarray, draws: int = 20) -> float:
    """The ECE a perfectly calibrated model would show with these probabilities on this many pairs (outcomes drawn
    from the probabilities themselves): measured ECE is not told from calibration error below it."""
    rng = np.random.default_rng(0)
    return float(np.mean([ece(probabilities, rng.random(len(probabilities)) < probabilities) for _ in range(draws)]))


def conformal_sets(calibration, positions, scores, coverage: float, guarantee: str) -> np.ndarray | None:
    """The conformal label sets as label positions (-1 elsewhere), or None for a level the candidates cannot reach."""
    try:
        thresholds = calibration.set_thresholds(coverage, guarantee).by_band
    except NotSupportedError:
        return None
    kept = (positions >= 0) & (scores >= thresholds[calibration.calibrator.band_of(positions)])
    return np.where(kept, positions, -1)


def top1(positions: np.ndarray, values: np.ndarray, right: np.ndarray) -> float:
    """P@1 when each document's candidates are ranked by `values`."""
    best = np.argmax(np.where(positions >= 0, values, -np.inf), axis=1)
    return float(100 * right[np.arange(len(best)), best].mean())


def topk_same_coverage(positions: np.ndarray, right: np.ndarray, gold_total: int, coverage: float) -> dict:
    """The smallest k whose top-k cut holds at least `coverage` of the gold labels (an oracle choice of k on the
    evaluated documents themselves, which favours the baseline)."""
    found = np.cumsum(right.sum(axis=0))
    k = int(np.searchsorted(found / gold_total, coverage - 1e-12) + 1)
    k = min(k, positions.shape[1])
    sizes = (positions[:, :k] >= 0).sum(axis=1)
    return {"k": k, "coverage": float(found[k - 1] / gold_total), "mean_size": float(sizes.mean())}


def bench_dataset(data: Path, spec: str, splits: int, alphas: list[float], mapie: bool, dev: bool = False,
                  conformal: Conformal | None = None, calibrator: Calibrator | None = None) -> dict:
    labels = read_labels(data / "labels.jsonl")
    train = [d for d in read_documents(data / "train.jsonl", skip_invalid=True, label_set=labels) if d.labels]
    if dev:  # choosing constants: a fifth of the train split stands in for the test split, which is not read
        order = np.random.default_rng(0).permutation(len(train))
        cut = len(train) // 5
        test, train = [train[i] for i in np.sort(order[:cut])], [train[i] for i in np.sort(order[cut:])]
    else:
        test = [d for d in read_documents(data / "test.jsonl", skip_invalid=True, label_set=labels) if d.labels]
    texts = [d.text for d in test]
    gold = labels.matrix([d.labels for d in test])
    encoder = get_encoder(spec, cache_dir=CACHE)
    encoder.encode([d.text for d in train] + texts, show_progress=True)  # warm the cache
    start = time.perf_counter()
    clf = Classifier(labels, encoder=encoder, fine_tune="off").fit([d.text for d in train], [d.labels for d in train],
                                                                  unlabeled=texts)
    model = clf.model_
    print(f"  {data.name}: trained in {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    ranking = model.candidates(texts)  # best first, every candidate
    positions, raw = ranking.positions, ranking.scores
    right = csr_lookup(gold, positions) > 0
    valid = positions >= 0
    raw_p = np.where(valid, raw, 0.0)
    bands = band_of(model.counts)
    outcomes = Outcomes.of(positions, raw, gold)
    caps = outcomes.recall_by_band(bands)
    result = {"dataset": data.name, "n_labels": len(labels), "n_test": len(test), "encoder": spec,
              "candidates_recall": outcomes.recall, "P@1 raw": top1(positions, raw_p, right),
              "band_recall": {name: float(r) if np.isfinite(r) else None for name, r in zip(BAND_NAMES, caps)}}
    if model.calibration is not None:  # calibrated at training, from the out-of-fold record
        calibration = model.calibration
        p = calibration.probabilities(positions, raw)
        result["record"] = {"source": calibration.source, "P@1": top1(positions, p, right),
                            **probability_metrics(p, right, valid)}
        for a in alphas:
            sets = conformal_sets(calibration, positions, raw, 1 - a, "label")
            result["record"][f"label coverage at {1 - a:g}"] = (
                None if sets is None else set_quality(sets, gold, bands).coverage)
    runs = []
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(len(test))
        cal, ev = np.sort(order[: len(test) // 2]), np.sort(order[len(test) // 2:])
        calibration = Calibration.fit(Outcomes.of(positions[cal], raw[cal], gold[cal]), bands, "bench",
                                      calibrator=None if calibrator is None else copy.copy(calibrator),
                                      conformal=conformal)
        pos, sc, r, v = positions[ev], raw[ev], right[ev], valid[ev]
        p = calibration.probabilities(pos, sc)
        run = {"before": probability_metrics(np.where(v, sc, 0.0), r, v), "after": probability_metrics(p, r, v),
               "P@1 raw": top1(pos, np.where(v, sc, 0.0), r), "P@1 calibrated": top1(pos, p, r)}
        in_band = calibration.calibrator.band_of(pos)
        gold_total = int(gold[ev].sum())
        for a in alphas:
            for guarantee in GUARANTEES:
                sets = conformal_sets(calibration, pos, sc, 1 - a, guarantee)
                if sets is None:  # the candidates miss too many true labels for this level
                    run[f"{guarantee} {a}"] = None
                    continue
                q = set_quality(sets, gold[ev], bands)
                run[f"{guarantee} {a}"] = {"coverage": q.coverage, "set_coverage": q.set_coverage, "fnr": q.fnr,
                                           "mean_size": q.mean_size, "median_size": q.median_size, "empty": q.empty,
                                           "by_band": {name: b for name, b in q.by_band.items()}}
            for g in PER_LABEL:
                if run[f"{g} {a}"] is not None:
                    run[f"topk {g} {a}"] = topk_same_coverage(pos, r, gold_total, run[f"{g} {a}"]["coverage"])
            global_half = v & (sc >= 0.5)
            run["threshold 0.5"] = {"coverage": float(r[global_half].sum() / gold_total),
                                    "mean_size": float(global_half.sum(axis=1).mean())}
        runs.append(run)
    result["runs"] = runs
    if mapie and data.name == "foldoc":
        result["mapie"] = mapie_check(model, positions, raw, gold, alphas)
    return result


def mapie_check(model, positions, raw, gold, alphas, splits: int = 5) -> dict:
    """MAPIE's multi-label conformal risk control on recall (CRC), run on our calibrated probabilities as a dense
    (n, L) matrix with the same calibration halves, beside our "fnr" sets: mean recall and set size on the other
    half. Its thresholds come from a grid of 0.01 steps."""
    from mapie.risk_control import MultiLabelClassificationController

    dense_gold = gold.toarray().astype(int)
    out = {f"{a}": {"ours": [], "mapie": []} for a in alphas}
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(len(positions))
        cal, ev = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
        calibration = Calibration.fit(Outcomes.of(positions[cal], raw[cal], gold[cal]), band_of(model.counts), "bench")
        dense = np.zeros(dense_gold.shape)
        p = calibration.probabilities(positions, raw)
        rows = np.repeat(np.arange(len(positions)), positions.shape[1])
        keep = positions.ravel() >= 0
        dense[rows[keep], positions.ravel()[keep]] = p.ravel()[keep]
        labelled = dense_gold.sum(axis=1) > 0
        cal, ev = cal[labelled[cal]], ev[labelled[ev]]
        mapie = MultiLabelClassificationController(predict_function=lambda x: dense[x[:, 0].astype(int)],
                                                   risk="recall", method="crc",
                                                   target_level=[1 - a for a in alphas])
        mapie.calibrate(cal[:, None], dense_gold[cal])
        predicted = mapie.predict(ev[:, None])
        for i, a in enumerate(alphas):
            sets = predicted[:, :, i]
            recall = (sets & (dense_gold[ev] > 0)).sum(axis=1) / dense_gold[ev].sum(axis=1)
            out[f"{a}"]["mapie"].append({"recall": float(recall.mean()), "mean_size": float(sets.sum(axis=1).mean())})
            kept = (positions[ev] >= 0) & (raw[ev] >= calibration.set_thresholds(1 - a, "fnr").by_band[
                calibration.calibrator.band_of(positions[ev])])
            q = set_quality(np.where(kept, positions[ev], -1), gold[ev], band_of(model.counts))
            out[f"{a}"]["ours"].append({"recall": 1 - q.fnr, "mean_size": q.mean_size})
    return out


def print_mapie(result: dict) -> None:
    print("\nMAPIE cross-check (conformal risk control of recall, same calibration halves):\n")
    print("| alpha | ours: mean recall / set size | MAPIE CRC: mean recall / set size |")
    print("|---|---|---|")
    for a, both in result.items():
        cells = [f"{np.mean([x['recall'] for x in both[w]]):.4f} / {np.mean([x['mean_size'] for x in both[w]]):.2f}"
                 for w in ("ours", "mapie")]
        print(f"| {a} | {cells[0]} | {cells[1]} |")


def summary(results: list[dict], alphas: list[float]) -> None:
    def ms(values) -> str:
        values = np.asarray(values, dtype=float)
        return f"{np.nanmean(values):.4f} ± {np.nanstd(values):.4f}"

    for r in results:
        runs = r["runs"]
        caps = ", ".join(f"{b} {100 * v:.1f}%" for b, v in r["band_recall"].items() if v is not None)
        print(f"\n## {r['dataset']} ({r['n_labels']:,} labels, {r['n_test']:,} test documents, {len(runs)} splits; "
              f"candidates hold {100 * r['candidates_recall']:.2f}% of the gold labels; by band: {caps})\n")
        print("| | ECE@1 | ECE@5 | ECE@5 of a calibrated model (floor) | Brier@1 | Brier@5 | P@1 |")
        print("|---|---|---|---|---|---|---|")
        for when, p1 in (("before", "P@1 raw"), ("after", "P@1 calibrated")):
            print(f"| {when} calibration | " + " | ".join(ms([x[when][m] for x in runs]) for m in
                                                        ("ECE@1", "ECE@5", "ECE@5 floor", "Brier@1", "Brier@5"))
                  + f" | {np.mean([x[p1] for x in runs]):.2f} |")
        if "record" in r:
            rec = r["record"]
            print(f"| out-of-fold record, all test docs | {rec['ECE@1']:.4f} | {rec['ECE@5']:.4f} | "
                  f"{rec['ECE@5 floor']:.4f} | "
                  f"{rec['Brier@1']:.4f} | {rec['Brier@5']:.4f} | {rec['P@1']:.2f} |")
        print("\n| alpha | sets | achieved | by band: coverage (gold labels) | mean size | median | empty | top-k of "
              "the same coverage: k / size | threshold 0.5: coverage / size |")
        print("|---|---|---|---|---|---|---|---|---|")
        for a in alphas:
            for g in GUARANTEES:
                key = f"{g} {a}"
                measure = {"label": "coverage", "pooled": "coverage", "set": "set_coverage", "fnr": "fnr"}[g]
                if any(x[key] is None for x in runs):
                    print(f"| {a} | {g} | unreachable: the candidates hold {100 * r['candidates_recall']:.2f}% of "
                          "the gold labels | | | | | | |")
                    continue
                bands = "; ".join(
                    f"{b} {np.nanmean([x[key]['by_band'][b]['coverage'] for x in runs]):.3f} "
                    f"({np.mean([x[key]['by_band'][b]['gold'] for x in runs]):.0f})"
                    for b in BAND_NAMES if np.mean([x[key]["by_band"][b]["gold"] for x in runs]) > 0
                ) if g in PER_LABEL else ""
                top = (f"{np.mean([x[f'topk {g} {a}']['k'] for x in runs]):.1f} / "
                       f"{np.mean([x[f'topk {g} {a}']['mean_size'] for x in runs]):.2f}") if g in PER_LABEL else ""
                half = (f"{np.mean([x['threshold 0.5']['coverage'] for x in runs]):.4f} / "
                        f"{np.mean([x['threshold 0.5']['mean_size'] for x in runs]):.2f}") if g == "label" else ""
                print(f"| {a} | {g} | {measure} {ms([x[key][measure] for x in runs])} | {bands} | "
                      f"{np.mean([x[key]['mean_size'] for x in runs]):.2f} | "
                      f"{np.mean([x[key]['median_size'] for x in runs]):.1f} | "
                      f"{np.mean([x[key]['empty'] for x in runs]):.1f} | {top} | {half} |")
        for g in PER_LABEL:
            ratios = [np.mean([x[f"{g} {a}"]["mean_size"] for x in runs]) /
                      np.mean([x[f"topk {g} {a}"]["mean_size"] for x in runs]) - 1
                      for a in alphas if all(x[f"{g} {a}"] is not None for x in runs)]
            if ratios:
                print(f"\n{g} sets against the top-k cut of the same coverage: "
                      + ", ".join(f"{100 * q:+.0f}%" for q in ratios) + f" (mean {100 * np.mean(ratios):+.0f}%)")
        if "mapie" in r:
            print_mapie(r["mapie"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data"))
    ap.add_argument("--datasets", default="foldoc,wordnet-taxonomy,gcide,emoji")
    ap.add_argument("--encoder", default="default")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--alphas", default="0.05,0.1,0.2")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--mapie", action="store_true", help="cross-check with MAPIE on foldoc (pip install mapie)")
    ap.add_argument("--dev", action="store_true",
                    help="for choosing constants: train on four fifths of the train split and measure on the rest")
    ap.add_argument("--min-band-labels", type=int, help="Conformal.min_band_labels (default: the library's)")
    ap.add_argument("--method", choices=METHODS, help="the calibration map fitted on each split (default: the "
                    "library's)")
    a = ap.parse_args()
    alphas = [float(x) for x in a.alphas.split(",")]
    conformal = None if a.min_band_labels is None else Conformal(min_band_labels=a.min_band_labels)
    calibrator = None if a.method is None else Calibrator(method=a.method)
    results = [bench_dataset(Path(a.data) / name, a.encoder, a.splits, alphas, a.mapie, a.dev, conformal, calibrator)
               for name in a.datasets.split(",")]
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    summary(results, alphas)


if __name__ == "__main__":
    main()
