"""Searches ordered first by a param or a tag (walked through the key's index) page like any other:
values in order, ties newest first, runs lacking the key last whichever the direction, every backend."""

from __future__ import annotations

import pytest

from mltrail.entities import Param, RunTag


@pytest.mark.parametrize("others", [0, 40])  # the key mostly in the searched experiment, or elsewhere
@pytest.mark.parametrize("kind, order", [("params", "ASC"), ("params", "DESC"), ("tags", "ASC"), ("tags", "DESC")])
def test_pages_ordered_by_a_param_or_tag_match_the_full_order(store, others, kind, order):
    exp_id = store.create_experiment(f"key-order-{kind}-{order}-{others}")
    elsewhere = store.create_experiment(f"key-order-else-{kind}-{order}-{others}")
    for i in range(others):
        run_id = store.create_run(elsewhere, "u", 1000 + i, [], f"else-{i}").info.run_id
        store.log_batch(run_id, params=[Param("lr", "0.5")], tags=[RunTag("lr", "0.5")])
    expected_key = {}
    for i in range(23):
        run_id = store.create_run(exp_id, "u", 1000 + i, [], f"r{i:02d}").info.run_id
        if i % 5 != 4:  # every fifth run lacks the key
            value = ["0.1", "0.01", "0.001"][i % 3]
            store.log_batch(run_id, params=[Param("lr", value)] if kind == "params" else [],
                            tags=[RunTag("lr", value)] if kind == "tags" else [])
            expected_key[f"r{i:02d}"] = value
    names = [f"r{i:02d}" for i in range(23)]
    having = sorted((n for n in names if n in expected_key), key=lambda n: n, reverse=True)  # newest first
    having.sort(key=lambda n: expected_key[n], reverse=order == "DESC")
    lacking = sorted((n for n in names if n not in expected_key), reverse=True)
    expected = having + lacking

    got, token = [], None
    while True:
        page = store.search_runs([exp_id], order_by=[f"{kind}.lr {order}"], max_results=4, page_token=token)
        got += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert got == expected
    # a filter on the same key keeps the order and drops the lacking runs
    filtered = store.search_runs([exp_id], f"{kind}.lr != '0.01'", order_by=[f"{kind}.lr {order}"])
    assert [r.info.run_name for r in filtered] == [n for n in having if expected_key[n] != "0.01"]
