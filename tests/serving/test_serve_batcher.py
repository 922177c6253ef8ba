"""The batcher on its own: what merges, how outputs split back, and failure isolation (no TensorFlow).

The "model" here is a row-wise numpy function handed to the Batcher; the same batcher with real
Keras models behind real servers is tested in test_serve_batching.py.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest

from mltrail.serving._batcher import Batcher, batch_key, merge, rows_of, split


def test_batch_key_matches_trailing_shape_and_dtype():
    a = np.zeros((1, 3), np.float32)
    assert batch_key(a) == batch_key(np.ones((5, 3), np.float32))
    assert batch_key(a) != batch_key(np.zeros((1, 4), np.float32))
    assert batch_key(a) != batch_key(np.zeros((1, 3), np.float64))
    assert batch_key(np.float32(1.0)) is None
    assert batch_key(np.zeros((0, 3))) is None


def test_batch_key_for_dicts_lists_and_frames():
    d = {"a": np.zeros((2, 3)), "b": np.zeros((2, 1))}
    assert batch_key(d) == batch_key({"a": np.ones((1, 3)), "b": np.ones((1, 1))})
    assert batch_key({"a": np.zeros((2, 3)), "b": np.zeros((1, 1))}) is None  # rows disagree
    assert batch_key([np.zeros((2, 3)), np.zeros((2, 2))]) is not None
    f = pd.DataFrame({"x": [1, 2]})
    assert batch_key(f) == batch_key(pd.DataFrame({"x": [3]}))
    assert batch_key(f) != batch_key(pd.DataFrame({"x": [3.0]}))


def test_merge_and_split_round_trip():
    parts = [np.arange(6).reshape(2, 3), np.arange(3).reshape(1, 3)]
    merged = merge(parts)
    assert merged.shape == (3, 3) and rows_of(merged) == 3
    back = split(merged * 2, [2, 1])
    np.testing.assert_array_equal(back[0], parts[0] * 2)
    np.testing.assert_array_equal(back[1], parts[1] * 2)


def test_split_dicts_lists_and_frames():
    out = {"y": np.arange(3), "z": np.arange(6).reshape(3, 2)}
    back = split(out, [1, 2])
    assert back[1]["z"].tolist() == [[2, 3], [4, 5]]
    back = split([np.arange(3), np.arange(3) * 10], [2, 1])
    assert back[1][1].tolist() == [20]
    frame = split(pd.DataFrame({"p": [1, 2, 3]}), [1, 2])
    assert frame[1]["p"].tolist() == [2, 3] and frame[1].index.tolist() == [0, 1]


def test_split_refuses_outputs_without_a_row_axis():
    assert split(np.float32(1.0), [1, 1]) is None
    assert split(np.arange(3), [1, 1]) is None


class HeldModel:
    """A row-wise function whose first call waits for `gate`, so later submissions queue up."""

    def __init__(self, fail_on: float | None = None):
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls: list[tuple[tuple[int, ...], object]] = []
        self.fail_on = fail_on

    def __call__(self, data, params):
        self.entered.set()
        self.gate.wait(30)
        self.calls.append((data.shape, params))
        if self.fail_on is not None and np.any(data == self.fail_on):
            raise ValueError(f"cannot score {self.fail_on}")
        return data.sum(axis=tuple(range(1, data.ndim))) * (params or {}).get("k", 1)


async def _submit_held(batcher: Batcher, model: HeldModel, first, others):
    """Submit `first`, wait until the model holds it, submit `others`, let them queue, open the gate."""
    loop = asyncio.get_running_loop()
    t0 = asyncio.ensure_future(batcher.submit(*first))
    await loop.run_in_executor(None, model.entered.wait, 30)
    rest = [asyncio.ensure_future(batcher.submit(*o)) for o in others]
    while batcher._queue.qsize() < len(others):
        await asyncio.sleep(0.01)
    model.gate.set()
    return await asyncio.gather(t0, *rest, return_exceptions=True)


def test_queued_requests_merge_into_one_call_and_split_back():
    model = HeldModel()
    batcher = Batcher(model, max_wait_ms=2, max_rows=256)
    xs = [np.full((n, 3), i, np.float32) for i, n in enumerate([1, 1, 2, 3, 1])]
    results = asyncio.run(_submit_held(batcher, model, (xs[0], None), [(x, None) for x in xs[1:]]))
    assert [c[0] for c in model.calls] == [(1, 3), (7, 3)]
    for x, r in zip(xs, results, strict=True):
        np.testing.assert_array_equal(r, x.sum(axis=1))
    assert batcher.largest_batch == 4
    batcher.close()


def test_incompatible_shapes_and_params_are_not_merged():
    model = HeldModel()
    batcher = Batcher(model, max_wait_ms=2, max_rows=256)
    a = np.ones((1, 3), np.float32)
    b = np.ones((1, 5), np.float32)
    results = asyncio.run(_submit_held(batcher, model, (a, None),
                                       [(a, None), (b, None), (a, {"k": 10}), (a, None), (b, None)]))
    shapes = [c[0] for c in model.calls]
    assert shapes[0] == (1, 3)
    assert sorted(shapes[1:]) == sorted([(2, 3), (2, 5), (1, 3)])  # a+a, b+b, and the params request alone
    assert ((1, 3), {"k": 10}) in model.calls
    assert [float(r[0]) for r in results] == [3.0, 3.0, 5.0, 30.0, 3.0, 5.0]
    batcher.close()


def test_row_cap_splits_a_batch():
    model = HeldModel()
    batcher = Batcher(model, max_wait_ms=2, max_rows=4)
    xs = [np.ones((2, 3), np.float32) for _ in range(5)]
    results = asyncio.run(_submit_held(batcher, model, (xs[0], None), [(x, None) for x in xs[1:]]))
    assert [c[0][0] for c in model.calls] == [2, 4, 4]
    assert all(r.tolist() == [3.0, 3.0] for r in results)
    batcher.close()


def test_a_failing_request_fails_alone():
    model = HeldModel(fail_on=7.0)
    batcher = Batcher(model, max_wait_ms=2, max_rows=256)
    good = np.ones((1, 3), np.float32)
    bad = np.full((1, 3), 7.0, np.float32)
    results = asyncio.run(_submit_held(batcher, model, (good, None), [(good, None), (bad, None), (good, None)]))
    assert isinstance(results[2], ValueError)
    assert [r.tolist() for i, r in enumerate(results) if i != 2] == [[3.0]] * 3


def test_a_lone_request_does_not_wait_for_company():
    calls = []

    def model(data, params):
        calls.append(data.shape)
        return data

    batcher = Batcher(model, max_wait_ms=60_000, max_rows=256)  # a minute: waiting would hang the test

    async def go():
        return await asyncio.wait_for(batcher.submit(np.ones((1, 2))), timeout=20)

    assert asyncio.run(go()).shape == (1, 2)
    assert calls == [(1, 2)]
    batcher.close()


def test_output_without_rows_runs_requests_one_by_one():
    model = HeldModel()

    def scalar_model(data, params):
        model(data, params)
        return float(data.sum())

    batcher = Batcher(scalar_model, max_wait_ms=2, max_rows=256)
    xs = [np.full((1, 2), i, np.float32) for i in range(3)]
    results = asyncio.run(_submit_held(batcher, model, (xs[0], None), [(x, None) for x in xs[1:]]))
    assert results == [0.0, 2.0, 4.0]
    assert [c[0] for c in model.calls] == [(1, 2), (2, 2), (1, 2), (1, 2)]  # merged try, then one by one


def test_closed_batcher_refuses_work():
    batcher = Batcher(lambda d, p: d)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(batcher.submit(np.ones((1, 1))))
