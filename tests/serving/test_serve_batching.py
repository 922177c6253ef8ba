"""Dynamic batching behind a real uvicorn server on 127.0.0.1, with real tiny Keras models.

Batched results must be what the model gives each request alone. To know for certain that
requests were merged, the model is wrapped so that its first call waits while the test queues
more requests (see `serving_models.Gated`).
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def post(url: str, body: dict, timeout: float = 60) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _app(model, **settings):
    from mltrail.serving import ServingSettings, create_scoring_app

    return create_scoring_app(model, ServingSettings(**settings))


def _held_then_queued(server, app, gated, first: dict, others: list[dict], path="/invocations"):
    """POST `first`; once the model holds it, POST `others` concurrently; open the gate when they are queued."""
    pool = concurrent.futures.ThreadPoolExecutor(len(others) + 1)
    url = server.url + path
    futures = [pool.submit(post, url, first)]
    assert gated.entered.wait(60)
    futures += [pool.submit(post, url, body) for body in others]
    deadline = time.monotonic() + 60
    while app.scorer.batcher._queue.qsize() < len(others):
        assert time.monotonic() < deadline, "requests did not reach the batcher"
        time.sleep(0.01)
    gated.gate.set()
    results = [f.result() for f in futures]
    pool.shutdown()
    return results


def test_merged_requests_get_the_same_predictions_as_alone(loaded, sm):
    model = loaded["mlp"]
    gated = sm.Gated(model)
    app = _app(gated)
    sizes = [1, 1, 3, 1, 2, 1, 1, 4, 1, 1]
    xs = [sm.random_rows(n, seed=100 + i) for i, n in enumerate(sizes)]
    with sm.ThreadServer(app) as server:
        results = _held_then_queued(server, app, gated, {"inputs": xs[0].tolist()},
                                    [{"inputs": x.tolist()} for x in xs[1:]])
    assert [c[0] for c in gated.calls] == [(1, 20), (sum(sizes[1:]), 20)]  # the nine queued ran as one call
    for x, (status, body) in zip(xs, results, strict=True):
        assert status == 200, body
        got = np.asarray(body["predictions"], np.float32)
        # TensorFlow's CPU kernels may round the last bit differently for another batch size
        np.testing.assert_allclose(got, model.predict(x), rtol=1e-6, atol=1e-7)
    # exactly what the model gives for the merged batch: the server adds nothing, loses nothing
    merged = np.concatenate(xs[1:])
    full = model.predict(merged)
    start = 0
    for x, (_, body) in zip(xs[1:], results[1:], strict=True):
        np.testing.assert_array_equal(np.asarray(body["predictions"], np.float32), full[start:start + len(x)])
        start += len(x)


def test_v2_and_mlflow_requests_share_batches(loaded, sm):
    model = loaded["mlp"]
    gated = sm.Gated(model)
    app = _app(gated)
    xs = [sm.random_rows(1, seed=200 + i) for i in range(4)]
    with sm.ThreadServer(app) as server:
        pool = concurrent.futures.ThreadPoolExecutor(4)
        first = pool.submit(post, server.url + "/invocations", {"inputs": xs[0].tolist()})
        assert gated.entered.wait(60)
        v2 = [pool.submit(post, server.url + "/v2/models/model/infer", {"inputs": [
            {"name": "input-0", "shape": [1, 20], "datatype": "FP32", "data": x.ravel().tolist()}]}) for x in xs[1:3]]
        mlflow = pool.submit(post, server.url + "/invocations", {"inputs": xs[3].tolist()})
        while app.scorer.batcher._queue.qsize() < 3:
            time.sleep(0.01)
        gated.gate.set()
        assert first.result()[0] == 200 and mlflow.result()[0] == 200
        for x, f in zip(xs[1:3], v2, strict=True):
            status, body = f.result()
            assert status == 200
            np.testing.assert_allclose(np.asarray(body["outputs"][0]["data"], np.float32),
                                       model.predict(x).ravel(), rtol=1e-6, atol=1e-7)
        pool.shutdown()
    assert [c[0] for c in gated.calls] == [(1, 20), (3, 20)]


def test_other_shapes_and_params_are_not_merged(loaded, sm):
    gated = sm.Gated(loaded["seq"])
    app = _app(gated)
    rng = np.random.default_rng(7)
    short = [rng.random((1, 3, 4)).astype("float32") for _ in range(3)]
    long = [rng.random((1, 5, 4)).astype("float32") for _ in range(2)]
    with sm.ThreadServer(app) as server:
        results = _held_then_queued(server, app, gated, {"inputs": short[0].tolist()},
                                    [{"inputs": x.tolist()} for x in (short[1], long[0], short[2], long[1])])
    shapes = [c[0] for c in gated.calls]
    assert shapes[0] == (1, 3, 4) and sorted(shapes[1:]) == [(2, 3, 4), (2, 5, 4)]
    for x, (status, body) in zip((short[0], short[1], long[0], short[2], long[1]), results, strict=True):
        assert status == 200
        np.testing.assert_allclose(np.asarray(body["predictions"], np.float32), loaded["seq"].predict(x),
                                   rtol=1e-6, atol=1e-7)

    gated = sm.Gated(loaded["params"])
    app = _app(gated)
    x = sm.random_rows(1).tolist()
    with sm.ThreadServer(app) as server:
        results = _held_then_queued(server, app, gated, {"inputs": x},
                                    [{"inputs": x}, {"inputs": x, "params": {"scale": 2.0}}, {"inputs": x}])
    assert all(status == 200 for status, _ in results)
    assert sorted((c[0][0], c[1] is not None) for c in gated.calls) == [(1, False), (1, True), (2, False)]


def test_concurrent_clients_get_their_own_predictions(loaded, sm):
    model = loaded["mlp"]
    app = _app(model)
    n_clients, per_client = 8, 15
    xs = {(c, i): sm.random_rows(1, seed=1000 + c * 100 + i) for c in range(n_clients) for i in range(per_client)}
    errors: list[str] = []

    def client(c: int, url: str) -> None:
        for i in range(per_client):
            status, body = post(url, {"inputs": xs[(c, i)].tolist()})
            if status != 200:
                errors.append(str(body))
                continue
            try:
                np.testing.assert_allclose(np.asarray(body["predictions"], np.float32), model.predict(xs[(c, i)]),
                                           rtol=1e-6, atol=1e-7)
            except AssertionError as e:
                errors.append(str(e))

    with sm.ThreadServer(app) as server:
        threads = [threading.Thread(target=client, args=(c, server.url + "/invocations")) for c in range(n_clients)]
        [t.start() for t in threads]
        [t.join(120) for t in threads]
    assert not errors, errors[:3]
    assert app.scorer.batcher.requests == n_clients * per_client


def test_a_lone_request_is_answered_without_the_batch_wait(loaded, sm):
    app = _app(loaded["mlp"], batch_wait_ms=120_000)  # waiting it out would take two minutes
    with sm.ThreadServer(app) as server:
        status, body = post(server.url + "/invocations", {"inputs": sm.random_rows(1).tolist()}, timeout=30)
    assert status == 200 and len(body["predictions"]) == 1
