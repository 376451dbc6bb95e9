"""The server's batcher: documents of concurrent requests ranked in one pass answer as each alone would, each
request with its own model, and a failure reaches every request of its pass without stopping the thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from test_model import trained
from test_supervised import TEST

from taxonomist.model import Model
from taxonomist.serve.batching import Batcher


class Gate:
    """Holds the batcher's thread in its first pass until released, so that later jobs queue up behind it."""

    def __init__(self, model: Model) -> None:
        self.model, self.entered, self.release = model, threading.Event(), threading.Event()

    def candidates(self, texts):
        self.entered.set()
        self.release.wait(10)
        return self.model.candidates(texts)


@pytest.fixture(scope="module")
def model() -> Model:
    return trained()


def test_documents_ranked_together_get_their_own_ranking(model) -> None:
    batcher = Batcher()
    gate = Gate(model)
    first = batcher.submit(gate, [TEST[0]])  # type: ignore[arg-type]
    assert gate.entered.wait(10)
    queued = [batcher.submit(model, [text]) for text in TEST[1:]] + [batcher.submit(model, TEST[:2])]
    gate.release.set()
    answers = [future.result(10) for future in [first, *queued]]
    assert batcher.passes == 2 and batcher.documents == len(TEST) + 2  # the queued jobs went in one pass
    for text, answer in zip([TEST[0], *TEST[1:]], answers):
        alone = model.candidates([text])
        assert answer.positions.shape[0] == 1
        width = int((alone.positions >= 0).sum())
        np.testing.assert_array_equal(answer.positions[0, :width], alone.positions[0, :width])
        np.testing.assert_allclose(answer.scores[0, :width], alone.scores[0, :width], rtol=1e-5)
        assert (answer.positions[0, width:] < 0).all()
    pair = model.candidates(TEST[:2])
    np.testing.assert_array_equal(answers[-1].positions[:, :pair.positions.shape[1]], pair.positions)
    batcher.close()


def test_each_job_is_ranked_by_the_model_it_came_with(model) -> None:
    other = replace(model, labels=model.labels)  # equal, but another object: a reload's fresh model
    calls: list[int] = []

    class Counting:
        def __init__(self, inner: Model) -> None:
            self.inner = inner

        def candidates(self, texts):
            calls.append(len(texts))
            return self.inner.candidates(texts)

    batcher = Batcher()
    a, b = Counting(model), Counting(other)
    with ThreadPoolExecutor(8) as pool:
        futures = list(pool.map(lambda i: batcher.submit(a if i % 2 else b, [TEST[i % len(TEST)]]), range(40)))
    assert all(future.result(10).positions.shape[0] == 1 for future in futures)
    assert sum(calls) == 40
    batcher.close()


def test_a_failing_pass_fails_its_requests_and_the_next_pass_still_runs(model) -> None:
    class Broken:
        def candidates(self, texts):
            raise RuntimeError("the disk is gone")

    batcher = Batcher()
    with pytest.raises(RuntimeError, match="the disk is gone"):
        batcher.candidates(Broken(), ["anything"])  # type: ignore[arg-type]
    assert batcher.candidates(model, [TEST[0]]).positions.shape[0] == 1
    assert batcher.candidates(model, []).positions.shape == (0, 1)  # nothing to rank: answered at once
    batcher.close()
