"""Calibration and conformal label sets on synthetic scores whose true probabilities are known, then through a
model and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import HashingEncoder
from test_cli import TINY_DOCS, TINY_LABELS, fails, run
from test_supervised import IDS, LABELS, TEST, TEXTS

from taxonomist.calibrate import Calibration, Calibrator, Conformal, Outcomes
from taxonomist.config import Config
from taxonomist.errors import InputError, NotSupportedError
from taxonomist.persist import read_model, write_model
from taxonomist.reliability import ece
from taxonomist.train import Trainer

N_LABELS, WIDTH = 50, 10


def synthetic(n_docs: int, seed: int, truth_of=lambda s: s ** 2, bands_of=None):
    """Documents with WIDTH candidates each; a candidate with score s is right with probability truth_of(s)."""
    rng = np.random.default_rng(seed)
    candidates = np.stack([rng.choice(N_LABELS, WIDTH, replace=False) for _ in range(n_docs)])
    scores = rng.random((n_docs, WIDTH)).astype(np.float32)
    order = np.argsort(-scores, axis=1)
    candidates, scores = np.take_along_axis(candidates, order, 1), np.take_along_axis(scores, order, 1)
    right = rng.random((n_docs, WIDTH)) < truth_of(scores)
    rows, cols = np.nonzero(right)
    gold = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, candidates[rows, cols])), shape=(n_docs, N_LABELS))
    return Outcomes.of(candidates, scores, gold), gold


BANDS_ALL_FREQUENT = np.full(N_LABELS, 3)


@pytest.mark.parametrize("method", ["isotonic", "beta", "platt"])
def test_calibrated_probabilities_match_how_often_scores_are_right(method: str) -> None:
    train, _ = synthetic(3000, 0)
    test, _ = synthetic(3000, 1)
    calibrator = Calibrator(method=method).fit(train, BANDS_ALL_FREQUENT)
    p = calibrator.probabilities(test.candidates, test.scores)
    raw = ece(test.scores.ravel(), test.truth.ravel())
    assert raw > 0.1  # s is not the probability: s**2 is
    assert ece(p.ravel(), test.truth.ravel()) < (0.02 if method == "isotonic" else 0.06) < raw


def test_beta_bends_where_platt_cannot_and_stays_monotone() -> None:
    """Right with probability s**2: log-odds 2 log s - log(1 - s) - log(1 + s), two slopes that Platt's one
    log-odds slope cannot give; and truth falling with the score must not make the map fall."""
    train, _ = synthetic(3000, 0)
    test, _ = synthetic(3000, 1)
    errors = {}
    for method in ("beta", "platt"):
        p = Calibrator(method=method).fit(train, BANDS_ALL_FREQUENT).probabilities(test.candidates, test.scores)
        errors[method] = float(np.mean((p - test.truth) ** 2))
    assert errors["beta"] < errors["platt"]
    falling, _ = synthetic(3000, 2, truth_of=lambda s: 0.5 - 0.4 * s + 0.3 * s ** 8)
    grid = np.linspace(0.01, 0.99, 99, dtype=np.float32)
    mapped = Calibrator(method="beta").fit(falling, BANDS_ALL_FREQUENT).probabilities(np.zeros(99, np.int64), grid)
    assert (np.diff(mapped) >= -1e-9).all()


def test_auto_keeps_scores_that_are_probabilities_and_maps_those_that_are_not(tmp_path) -> None:
    calibrated, _ = synthetic(600, 0, truth_of=lambda s: s)
    kept = Calibrator().fit(calibrated, BANDS_ALL_FREQUENT)
    assert kept.method_ == "identity" and set(kept.cv_brier_) == {"identity", "platt", "beta", "isotonic"}
    assert np.array_equal(kept.probabilities(calibrated.candidates, calibrated.scores), calibrated.scores)
    squared, _ = synthetic(600, 0)  # right with probability s**2: the scores overstate it
    mapped = Calibrator().fit(squared, BANDS_ALL_FREQUENT)
    assert mapped.method_ in {"isotonic", "beta", "platt"}
    assert mapped.cv_brier_[mapped.method_] < mapped.cv_brier_["identity"]
    mapped.save(tmp_path)
    loaded = Calibrator.load(tmp_path)
    assert (loaded.method, loaded.method_, loaded.cv_brier_) == ("auto", mapped.method_, mapped.cv_brier_)
    test, _ = synthetic(300, 1)
    assert np.allclose(loaded.probabilities(test.candidates, test.scores),
                       mapped.probabilities(test.candidates, test.scores))


def test_each_band_gets_its_own_map_and_a_thin_band_the_pooled_one() -> None:
    bands = np.where(np.arange(N_LABELS) < 25, 1, 3)
    train, _ = synthetic(4000, 0, truth_of=lambda s: s)
    # band 1's labels are right a third as often as band 3's
    rng = np.random.default_rng(5)
    thin = (bands[train.candidates] == 1) & train.truth & (rng.random(train.truth.shape) < 2 / 3)
    truth = train.truth & ~thin
    rows, cols = np.nonzero(truth)
    gold = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, train.candidates[rows, cols])), shape=(4000, N_LABELS))
    calibrator = Calibrator().fit(Outcomes.of(train.candidates, train.scores, gold), bands)
    assert calibrator.maps_[1 + 1] is not None and calibrator.maps_[1 + 3] is not None
    assert calibrator.maps_[1 + 0] is None and calibrator.maps_[1 + 2] is None  # no pairs: the pooled map
    high = np.array([[0, 30]])  # label 0 in band 1, label 30 in band 3
    p = calibrator.probabilities(high, np.array([[0.9, 0.9]], np.float32))
    assert p[0, 0] == pytest.approx(0.3, abs=0.08) and p[0, 1] == pytest.approx(0.9, abs=0.08)
    assert calibrator.probabilities(np.array([[60]]), np.array([[0.9]], np.float32))[0, 0] > 0  # a label added later


@pytest.mark.parametrize("guarantee, measure", [("label", "label"), ("pooled", "label"), ("set", "set"),
                                                ("fnr", "fnr")])
def test_conformal_sets_keep_their_guarantee_over_random_splits(guarantee: str, measure: str) -> None:
    outcomes, gold = synthetic(1200, 0, truth_of=lambda s: 0.5 * s)
    alpha = 0.1
    achieved = []
    for seed in range(30):
        order = np.random.default_rng(seed).permutation(1200)
        cal, ev = order[:600], order[600:]
        conformal = Conformal().fit(_rows(outcomes, cal), BANDS_ALL_FREQUENT)
        threshold = conformal.thresholds(1 - alpha, guarantee).by_band[3]
        inside = outcomes.truth[ev] & (outcomes.scores[ev] >= threshold)
        n_true = outcomes.truth[ev].sum(axis=1)
        labelled = n_true > 0
        if measure == "label":
            achieved.append(inside.sum() / n_true.sum())
        elif measure == "set":
            achieved.append((inside.sum(axis=1) == n_true)[labelled].mean())
        else:
            achieved.append(1 - (1 - inside.sum(axis=1)[labelled] / n_true[labelled]).mean())
    assert 1 - alpha - 0.01 <= np.mean(achieved) <= 1 - alpha + 0.03


def test_pooled_sets_are_smaller_and_leave_a_rare_band_short_where_label_sets_cover_it() -> None:
    """A fifth of the labels are rare: they score a quarter of what the others do, and a score means the same
    chance of being right in both bands (as calibrated scores do), so one threshold makes the smallest sets."""
    bands = np.where(np.arange(N_LABELS) < 10, 1, 3)
    outcomes, _ = synthetic(2400, 0)
    rare = bands[outcomes.candidates] == 1
    scores = np.where(rare, outcomes.scores / 4, outcomes.scores)
    right = np.random.default_rng(1).random(scores.shape) < scores
    rows, cols = np.nonzero(right)
    gold = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, outcomes.candidates[rows, cols])),
                         shape=(2400, N_LABELS))
    outcomes = Outcomes.of(outcomes.candidates, scores, gold)
    cal, ev = np.arange(1200), np.arange(1200, 2400)
    conformal = Conformal().fit(_rows(outcomes, cal), bands)
    covered, sizes = {}, {}
    for guarantee in ("label", "pooled"):
        inside = outcomes.scores[ev] >= conformal.thresholds(0.9, guarantee).by_band[bands[outcomes.candidates[ev]]]
        covered[guarantee] = (inside & outcomes.truth[ev] & rare[ev]).sum() / (outcomes.truth[ev] & rare[ev]).sum()
        sizes[guarantee] = inside.sum(axis=1).mean()
    assert covered["label"] >= 0.88 > 0.8 > covered["pooled"]
    assert sizes["pooled"] < sizes["label"]


def test_a_band_with_few_calibration_labels_shares_its_more_frequent_neighbours_threshold() -> None:
    assert Conformal._groups(np.array([0, 6, 43, 767]), 20) == [[1, 2], [3]]
    assert Conformal._groups(np.array([5, 30, 0, 3]), 20) == [[0, 1, 3]]  # a short last band joins the one before
    assert Conformal._groups(np.array([25, 30, 40, 50]), 20) == [[0], [1], [2], [3]]
    bands = np.where(np.arange(N_LABELS) < 1, 1, np.where(np.arange(N_LABELS) < 10, 2, 3))
    outcomes, gold = synthetic(200, 0, truth_of=lambda s: 0.5 * s)
    scale = np.array([1.0, 0.3, 0.5, 1.0])[bands[outcomes.candidates]]  # the rarer, the lower the scores
    outcomes = Outcomes.of(outcomes.candidates, (outcomes.scores * scale).astype(np.float32), gold)
    conformal = Conformal().fit(outcomes, bands)
    assert 0 < np.bincount(conformal.bands_, minlength=4)[1] < 20
    thresholds = conformal.thresholds(0.9)
    assert thresholds.shared == ((1, 2),)
    assert thresholds.by_band[1] == thresholds.by_band[2] < thresholds.by_band[3]


def _rows(outcomes: Outcomes, rows: np.ndarray) -> Outcomes:
    keep = np.isin(outcomes.missed_docs, rows)
    renumber = np.full(outcomes.n_docs, -1)
    renumber[rows] = np.arange(len(rows))
    return Outcomes(outcomes.candidates[rows], outcomes.scores[rows], outcomes.truth[rows],
                    renumber[outcomes.missed_docs[keep]], outcomes.missed_labels[keep])


def test_labels_outside_the_shortlist_cap_the_coverage_and_too_few_labels_are_refused() -> None:
    outcomes, gold = synthetic(400, 0, truth_of=lambda s: 0.5 * s)
    extra = sp.csr_matrix((np.ones(400, np.float32), (np.arange(400), np.full(400, N_LABELS - 1))),
                          shape=gold.shape)
    outside = np.where(outcomes.candidates == N_LABELS - 1, 0, outcomes.candidates)  # never a candidate
    missing = Outcomes.of(outside, outcomes.scores, ((gold + extra) > 0).astype(np.float32))
    assert missing.recall < 0.7
    bands = BANDS_ALL_FREQUENT.copy()
    bands[N_LABELS - 1] = 1  # the label never a candidate
    by_band = missing.recall_by_band(bands)
    assert by_band[1] == 0 and by_band[3] == 1 and np.isnan(by_band[0])
    conformal = Conformal().fit(missing, BANDS_ALL_FREQUENT)
    with pytest.raises(NotSupportedError, match="hold only") as error:
        conformal.thresholds(0.9)
    assert "coverage below" in error.value.fix
    few = Conformal().fit(_rows(outcomes, np.arange(1)), BANDS_ALL_FREQUENT)  # a few true labels
    with pytest.raises(InputError, match="too few for coverage 0.9") as error:
        few.thresholds(0.9)
    assert "at least 9" in error.value.fix
    for bad in (0, 1, 1.5, -0.1, True):
        with pytest.raises(InputError, match="strictly between 0 and 1"):
            conformal.thresholds(bad)


def test_precision_thresholds_reach_the_target_on_the_calibration_pairs(tmp_path) -> None:
    outcomes, _ = synthetic(2000, 0)
    calibration = Calibration.fit(outcomes, BANDS_ALL_FREQUENT, "synthetic")
    threshold = calibration.precision_thresholds(0.8)[3]
    kept = calibration.pair_probabilities >= threshold
    assert calibration.pair_truth[kept].mean() >= 0.8 and kept.sum() > 100
    assert calibration.pair_truth[calibration.pair_probabilities >= threshold - 0.05].mean() < 0.8 + 0.05
    seldom, _ = synthetic(2000, 1, truth_of=lambda s: 0.5 * s)  # right at most half the time
    with pytest.raises(NotSupportedError, match="no threshold reaches precision 0.9"):
        Calibration.fit(seldom, BANDS_ALL_FREQUENT, "synthetic").precision_thresholds(0.9)
    calibration.save(tmp_path)
    loaded = Calibration.load(tmp_path)
    np.testing.assert_array_equal(loaded.probabilities(outcomes.candidates, outcomes.scores),
                                  calibration.probabilities(outcomes.candidates, outcomes.scores))
    assert loaded.set_thresholds(0.8).by_band.tolist() == calibration.set_thresholds(0.8).by_band.tolist()


DENSE = Config.from_options(context="", supervised=("prototypes", "linear", "neighbours"))


def test_a_trained_model_is_calibrated_on_its_held_out_examples_and_keeps_it_saved(tmp_path) -> None:
    model = Trainer(DENSE).fit(LABELS, HashingEncoder(), TEXTS, IDS)
    assert model.calibration is not None and "out-of-fold" in model.calibration.source
    ranking = model.rank(TEST, 3)
    assert ranking.probabilities is not None and ((ranking.probabilities >= 0) & (ranking.probabilities <= 1)).all()
    proba = model.probabilities(TEST)
    assert proba.shape == (len(TEST), len(LABELS)) and proba.max() <= 1
    sets = model.label_sets(TEST, 0.8)
    assert sets.positions.shape[0] == len(TEST)
    write_model(model, tmp_path / "model")
    loaded = read_model(tmp_path / "model", encoder=HashingEncoder())
    np.testing.assert_allclose(loaded.rank(TEST, 3).probabilities, ranking.probabilities)
    recalibrated = loaded.calibrated(TEST + TEXTS[::3], [["a"], ["b"], ["c"]] + IDS[::3])
    assert recalibrated.calibration.source.endswith("labelled documents") and loaded.calibration is not recalibrated.calibration


def test_without_a_calibration_there_are_no_probabilities_or_sets() -> None:
    zero_shot = Trainer(DENSE).fit(LABELS, HashingEncoder())
    assert zero_shot.calibration is None and zero_shot.rank(TEST, 2).probabilities is None
    for ask in (lambda: zero_shot.probabilities(TEST), lambda: zero_shot.label_sets(TEST, 0.9),
                lambda: zero_shot.above(zero_shot.rank(TEST, 2), min_probability=0.5)):
        with pytest.raises(NotSupportedError, match="no calibration") as error:
            ask()
        assert "taxonomist calibrate" in error.value.fix
    with pytest.raises(InputError, match="none of the 3 calibration documents has gold labels"):
        zero_shot.calibrated(TEST, [[], [], []])


# ---------------------------------------------------------------------------- the command line
@pytest.fixture
def calibrated(tmp_path, capsys, hashing_encoder):
    path = tmp_path / "calibrated"
    code, _, err = run(capsys, "calibrate", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", path)
    assert code == 0 and "calibrated on 54 documents" in err, err
    assert "scores mapped by" in err and "Brier on documents left out of the fit: identity" in err
    return path


def test_suggest_with_coverage_probability_or_precision(calibrated, capsys):
    code, out, err = run(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "--coverage", "0.8",
                         "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and "not probabilities" not in err
    sizes = np.bincount([int(row["doc_id"][1:]) for row in rows])
    assert len(set(sizes[1:])) > 1  # set sizes vary with the document
    assert all(0 <= row["probability"] <= 1 for row in rows)
    middle = float(np.median([row["probability"] for row in rows]))
    code, out, _ = run(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "-k", "5",
                       "--min-probability", f"{middle:.6f}", "--format", "jsonl")
    kept = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and 0 < len(kept) < 54 * 5 and all(row["probability"] >= round(middle, 6) for row in kept)
    code, out, _ = run(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "--target-precision", "0.15",
                       "--format", "jsonl")
    kept = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and 0 < len(kept) < 54 * 5  # the hashing encoder's suggestions are seldom right
    fails(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "--target-precision", "0.9", where="",
          what="no threshold reaches precision 0.9", fix="lower precision")


def test_an_uncalibrated_model_says_so_and_refuses_probabilities(tmp_path, capsys, hashing_encoder):
    code, out, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--format", "jsonl")
    assert code == 0 and "scores are not probabilities" in err
    assert all(json.loads(line)["probability"] is None for line in out.splitlines())
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--coverage", "0.9", where="",
          what="a zero-shot setup has no calibration", fix="taxonomist calibrate")
    run(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", tmp_path / "m")  # 54: none held out
    fails(capsys, "suggest", "--model", tmp_path / "m", "--docs", TINY_DOCS, "--min-probability", "0.5", where="",
          what="this model has no calibration", fix="taxonomist calibrate --model")


def test_bad_confidence_requests_are_clear_errors(calibrated, capsys, tmp_path):
    fails(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "--coverage", "1.5", where="",
          what="--coverage must lie strictly between 0 and 1", fix="0.9")
    fails(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "--target-precision", "0", where="",
          what="--target-precision must lie strictly between 0 and 1", fix="0.9")
    fails(capsys, "suggest", "--model", calibrated, "--docs", TINY_DOCS, "--coverage", "0.999", where="",
          what="too few for coverage 0.999", fix="at least 999")
    unlabelled = tmp_path / "plain.txt"
    unlabelled.write_text("a refund please\nmy parcel is late\n")
    fails(capsys, "calibrate", "--model", calibrated, "--docs", unlabelled, where="",
          what="none of the 2 calibration documents has gold labels", fix="'labels' field")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"id": "x", "text": "a refund please", "labels": ["no/such/label"]}\n')
    fails(capsys, "calibrate", "--model", calibrated, "--docs", foreign, where=f"{foreign}:1", what="no/such/label",
          fix="add it to the label set")
    fails(capsys, "calibrate", "--labels", TINY_LABELS, "--docs", TINY_DOCS, where="", what="either updates",
          fix="--out MODEL")


def test_eval_reports_reliability_and_sets_by_band(calibrated, capsys, tmp_path):
    report = tmp_path / "report.html"
    code, out, _ = run(capsys, "eval", "--model", calibrated, "--docs", TINY_DOCS, "--json", "--coverage", "0.8",
                       "--report", report)
    confidence = json.loads(out)["confidence"]
    assert code == 0 and confidence["calibration"] == "54 labelled documents"
    assert {"ECE@1", "ECE@5"} <= set(confidence["reliability"]["ece"])
    assert 0.5 < confidence["sets"]["coverage"] <= 1 and confidence["sets"]["mean_size"] > 0
    assert confidence["sets"]["by_band"] and confidence["curve"]
    for band, covered in confidence["sets"]["by_band"].items():  # no band is covered beyond its candidates' recall
        assert covered["gold"] == 0 or covered["coverage"] <= confidence["recall_by_band"][band]
    page = report.read_text()
    assert 'alt="reliability diagram"' in page and 'alt="coverage against set size"' in page


def test_a_weak_band_is_covered_by_its_own_threshold_and_a_band_out_of_reach_does_not_sink_the_whole() -> None:
    bands = np.where(np.arange(N_LABELS) < 10, 1, 3)
    weak = lambda s: 0.5 * s  # noqa: E731
    outcomes, gold = synthetic(2000, 0, truth_of=weak)
    # band 1's true labels score lower than band 3's: a pooled threshold would leave many of them out
    scores = np.where(bands[outcomes.candidates] == 1, outcomes.scores * 0.3, outcomes.scores).astype(np.float32)
    shifted = Outcomes(outcomes.candidates, scores, outcomes.truth, outcomes.missed_docs, outcomes.missed_labels)
    cal, ev = np.arange(1000), np.arange(1000, 2000)
    thresholds = Conformal().fit(_rows(shifted, cal), bands).thresholds(0.9)
    assert thresholds.by_band[1] < thresholds.by_band[3]
    inside = shifted.truth[ev] & (shifted.scores[ev] >= thresholds.by_band[bands[shifted.candidates[ev]]])
    in_band = bands[shifted.candidates[ev]]
    for b in (1, 3):
        assert inside[in_band == b].sum() / shifted.truth[ev][in_band == b].sum() >= 0.88
    # every band reachable: each keeps its own threshold, band 3's above the pooled one (no needless labels)
    fitted = Conformal().fit(_rows(shifted, cal), bands)
    pooled = fitted._quantile(fitted.scores_, 0.1, "true labels")
    own = fitted._quantile(fitted.scores_[fitted.bands_ == 3], 0.1, "true labels")
    assert thresholds.by_band[3] == own > pooled
    # band 1's labels mostly outside the candidates: out of its reach, it must not pull the whole below 0.9
    never = (bands[shifted.candidates] == 1) & (np.random.default_rng(1).random(shifted.truth.shape) < 0.5)
    candidates = np.where(never, -1, shifted.candidates)
    hidden = Outcomes.of(candidates, np.where(never, -np.inf, shifted.scores), gold)
    result = Conformal().fit(_rows(hidden, cal), bands).thresholds(0.8)
    assert 1 in result.capped_bands
    covered = hidden.truth[ev] & (hidden.scores[ev] >= result.by_band[bands[np.maximum(hidden.candidates[ev], 0)]])
    assert covered.sum() / (hidden.truth[ev].sum() + np.isin(hidden.missed_docs, ev).sum()) >= 0.78
