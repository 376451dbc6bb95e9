"""Do two source trees rank alike? For a change that must not change results (a refactor): each tree trains and
ranks through the `Classifier` facade, in its own process, and the rankings are compared slot by slot.

Training twice on the same data gives the same model except for the sparse XMC scorer (Omikuji draws from a
generator it does not let anyone seed), so the configurations without it must agree exactly, and those with it
("full") as closely as two runs of one tree do: `--repeat` trains each tree twice to show that noise.

usage: python bench/same_results.py TREE_A TREE_B [--jobs foldoc:static:zero,...] [--repeat]
  e.g. git worktree add /tmp/before HEAD~3 && python bench/same_results.py /tmp/before .
  a job is DATASET:ENCODER:MODE, MODE one of zero (zero-shot, adapted to the test texts), zero-batch (zero-shot,
  each batch adapted to), dense (prototypes, ridge heads, nearest examples), full (every scorer)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data"
JOBS = "foldoc:static:zero,foldoc:static:zero-batch,emoji:static:zero,gcide:static:zero,foldoc:static:dense," \
       "foldoc:static:full"
# Runs inside each tree: only the facade, which both sides of a refactor have.
RANK = """
import sys, numpy as np
from taxonomist.classifier import Classifier
try:
    from taxonomist.readers import read_documents, read_labels
except ImportError:  # before readers.py
    from taxonomist.corpus import read_documents
    from taxonomist.labels import read_labels
data, encoder, mode, out = sys.argv[1:5]
labels = read_labels(f"{data}/labels.jsonl")
train = [d for d in read_documents(f"{data}/train.jsonl", skip_invalid=True, label_set=labels) if d.labels]
texts = [d.text for d in read_documents(f"{data}/test.jsonl", skip_invalid=True, label_set=labels)][:4000]
examples = ([d.text for d in train], [list(d.labels) for d in train])
if mode == "zero":
    clf = Classifier(labels, encoder=encoder).fit(unlabeled=texts)
elif mode == "zero-batch":
    clf = Classifier(labels, encoder=encoder).fit()
else:
    supervised = {"dense": ("prototypes", "linear", "neighbours")}.get(mode)
    options = {"supervised": supervised} if supervised else {}
    clf = Classifier(labels, encoder=encoder, fine_tune="off", **options).fit(*examples, unlabeled=texts)
positions, scores = clf.rank(texts, 5)
np.savez(out, positions=positions, scores=scores)
"""


def rank(tree: Path, job: str, out: Path) -> None:
    data, encoder, mode = job.split(":")
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", RANK, str(DATA / data), encoder, mode, str(out)], env=env, check=True,
                   stderr=subprocess.DEVNULL)


def compare(a: Path, b: Path) -> tuple[float, bool]:
    x, y = np.load(a), np.load(b)
    return float((x["positions"] == y["positions"]).mean()), bool(np.array_equal(x["scores"], y["scores"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trees", nargs=2, type=Path)
    ap.add_argument("--jobs", default=JOBS)
    ap.add_argument("--repeat", action="store_true", help="train each tree twice: the run-to-run noise")
    a = ap.parse_args()
    print("| job | same label in the same top-5 place | scores identical |" + (
        " A vs A again | B vs B again |" if a.repeat else ""))
    print("|---|---|---|" + ("---|---|" if a.repeat else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for job in a.jobs.split(","):
            paths = {}
            for side, tree in zip("AB", a.trees):
                for run in ("1", "2") if a.repeat else ("1",):
                    paths[side + run] = Path(tmp) / f"{job.replace(':', '-')}-{side}{run}.npz"
                    rank(tree.resolve(), job, paths[side + run])
            same, exact = compare(paths["A1"], paths["B1"])
            row = f"| {job} | {100 * same:.2f}% | {'yes' if exact else 'no'} |"
            if a.repeat:
                row += "".join(f" {100 * compare(paths[s + '1'], paths[s + '2'])[0]:.2f}% |" for s in "AB")
            print(row, flush=True)


if __name__ == "__main__":
    main()
