"""The UI's pages: experiments, runs table, run, compare, logged and registered models."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from mltrail.entities import RegisteredModel, ViewType
from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.server.auth.authorize import readable_of
from mltrail.server.auth.levels import EXPERIMENT, REGISTERED_MODEL
from mltrail.server.auth.ui import shared_with
from mltrail.server.context import ServerContext
from mltrail.server.ui._artifacts import ArtifactView
from mltrail.server.ui._format import fmt_duration
from mltrail.server.ui._media import Media, collect_media
from mltrail.server.ui._metric_groups import group_metrics
from mltrail.server.ui._models import model_card, snippets
from mltrail.server.ui._runs import (
    PARENT_TAG,
    available_keys,
    next_order,
    page_size,
    parse_columns,
    runs_page,
    sort_link_state,
)
from mltrail.server.ui._sampling import points_per_run
from mltrail.server.ui._ui import UI

MAX_COMPARE = 200
MAX_CHILDREN_SHOWN = 1000
MAX_MODELS_ON_RUN = 5
SUMMARY_LIMIT = 256 * 1024
CHUNK = 25  # runs per metrics request: a chart's data arrives over several parallel requests
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
           "#e6550d", "#31a354", "#756bb1", "#636363"]


def _tracking_uri(request: Request) -> str:
    base = request.scope.get("root_path", "").rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{base}"


def _metric_urls(base: str, runs: list[Any], key: str) -> list[str]:
    """The requests that fetch metric `key` of these runs, downsampled, CHUNK runs each."""
    ids = [r.info.run_id for r in runs]
    n = points_per_run(len(ids))
    return [f"{base}/ui/api/metrics?" + urlencode({"key": key, "max_points": n, "run_ids": ",".join(ids[i:i + CHUNK])})
            for i in range(0, len(ids), CHUNK)]


def _chart_data(base: str, runs: list[Any], keys: list[str]) -> dict[str, Any]:
    """What charts.js needs: runs with names and colours, and per metric the URLs of its data."""
    n = points_per_run(len(runs))
    charts = [{"key": k, "urls": _metric_urls(base, runs, k)} for k in keys]
    return {"base": base, "max_points": n,
            "runs": [{"id": r.info.run_id, "name": r.info.run_name or r.info.run_id[:8],
                      "color": PALETTE[i % len(PALETTE)]} for i, r in enumerate(runs)],
            "charts": charts}


# ---------------------------------------------------------------------- experiments
def experiments(ui: UI, request: Request) -> Response:
    q = (request.query_params.get("q") or "").strip()
    view = request.query_params.get("view") or ""
    vt = {"deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}.get(view, ViewType.ACTIVE_ONLY)
    exps = list(ui.store.search_experiments(vt, 50000, None, None, None, readable=readable_of(request, EXPERIMENT)))
    if q:
        exps = [e for e in exps if q.lower() in e.name.lower()]
    counts = ui.store.count_runs([e.experiment_id for e in exps]) if exps else {}
    exps.sort(key=lambda e: (-(e.last_update_time or 0), e.name))
    return ui.render(request, "experiments.html", experiments=exps, counts=counts, q=q, view=view)


def _runs_query(request: Request) -> dict[str, Any]:
    p = request.query_params
    return {"filter": (p.get("filter") or "").strip(), "order_by": (p.get("order_by") or "").strip(),
            "columns": p.get("columns"), "view": p.get("view") or "", "page_size": p.get("page_size") or ""}


def experiment_runs(ui: UI, request: Request) -> Response:
    exp = ui.store.get_experiment(request.path_params["experiment_id"])
    q = _runs_query(request)
    token = request.query_params.get("page_token") or None
    error = ""
    try:
        columns = parse_columns(q["columns"])
        size = page_size(q["page_size"])
        page = runs_page(ui.store, exp.experiment_id, q["filter"], q["order_by"] or None, token, size, columns,
                         q["view"])
    except InvalidParameterValue as e:
        error = e.message
        page = runs_page(ui.store, exp.experiment_id, "", None, None, 100, None, q["view"])
        page.rows, page.token = [], None
    total = ui.store.count_runs([exp.experiment_id]).get(exp.experiment_id, 0)
    keys = available_keys(page.runs)
    chosen = {c.spec for c in page.columns}
    base = request.scope.get("root_path", "").rstrip("/")
    keep = {k: v for k, v in q.items() if v}
    next_url = next_api = ""
    if page.token:
        next_url = f"{base}/experiments/{quote(exp.experiment_id)}?" + urlencode(
            {**keep, "columns": ",".join(sorted(chosen, key=[c.spec for c in page.columns].index)),
             "page_token": page.token})
        next_api = f"{base}/ui/api/runs?" + urlencode(
            {**keep, "experiment_id": exp.experiment_id,
             "columns": ",".join(c.spec for c in page.columns), "page_token": page.token})
    headers = [{"col": c, "state": sort_link_state(q["order_by"], c.order_key),
                "next": next_order(q["order_by"], c.order_key)} for c in page.columns]
    attr_headers = {name: {"state": sort_link_state(q["order_by"], key), "next": next_order(q["order_by"], key)}
                    for name, key in (("name", "attributes.run_name"), ("status", "attributes.status"),
                                      ("start", "attributes.start_time"), ("user", "attributes.user_id"))}
    return ui.render(request, "runs.html", exp=exp, page=page, q=q, error=error, total=total, keys=keys,
                     chosen=chosen, headers=headers, attr_headers=attr_headers, next_url=next_url,
                     next_api=next_api, paged=bool(token),
                     columns_spec=",".join(c.spec for c in page.columns),
                     sharing=shared_with(ui.ctx, request, EXPERIMENT, exp.experiment_id))


# ---------------------------------------------------------------------- run
def _children(store: Any, run: Any) -> list[Any]:
    rid = run.info.run_id.replace("'", "")
    return list(store.search_runs([run.info.experiment_id], f"tags.`{PARENT_TAG}` = '{rid}'", ViewType.ACTIVE_ONLY,
                                  MAX_CHILDREN_SHOWN, ["attributes.start_time ASC"], None))


def _artifact_root(ctx: ServerContext, run: Any) -> tuple[ArtifactView | None, list[dict[str, Any]], str]:
    try:
        view = ArtifactView.for_run(ctx, run)
        return view, view.list(""), ""
    except MltrailException as e:
        return None, [], e.message
    except Exception as e:  # noqa: BLE001 - the rest of the page still renders
        return None, [], f"{type(e).__name__}: {e}"


def _may_read(request: Request, experiment_id: str) -> bool:
    readable = readable_of(request, EXPERIMENT)
    return readable is None or readable.allows(experiment_id)


def run_page(ui: UI, request: Request) -> Response:
    store = ui.store
    run = store.get_run(request.path_params["run_id"])
    exp = store.get_experiment(run.info.experiment_id)
    tags = run.data.tags
    parent = None
    if tags.get(PARENT_TAG):
        try:
            parent = store.get_run(tags[PARENT_TAG])
        except MltrailException:
            parent = None
    children = _children(store, run)
    view, root_files, artifact_error = _artifact_root(ui.ctx, run)
    summary = ""
    if view is not None and any(f["path"] == "model_summary.txt" for f in root_files):
        data, _ = view.read("model_summary.txt", SUMMARY_LIMIT)
        summary = data.decode("utf-8", errors="replace")
    if parent is not None and not _may_read(request, parent.info.experiment_id):
        parent = None
    cards = []
    model_ids = [o.model_id for o in run.outputs.model_outputs]
    for model_id in model_ids[:MAX_MODELS_ON_RUN]:
        try:
            model = store.get_logged_model(model_id)
        except MltrailException:
            continue
        if not _may_read(request, model.experiment_id):  # a model logged into another team's experiment
            continue
        cards.append(model_card(ui.ctx, model, _tracking_uri(request)))
    user_tags = {k: v for k, v in sorted(tags.items()) if not k.startswith("mlflow.")}
    system_tags = {k: v for k, v in sorted(tags.items()) if k.startswith("mlflow.")}
    base = request.scope.get("root_path", "").rstrip("/")
    groups = group_metrics(list(run.data.metrics))
    specs = [spec for g in groups for spec in g.charts]
    chart_data = _chart_data(base, [run], [spec.key for spec in specs])
    # a chart with validation metrics draws them as more lines, each from its own request as before
    chart_of: dict[str, int] = {}
    for i, (spec, chart) in enumerate(zip(specs, chart_data["charts"], strict=True)):
        chart_of[spec.key] = i
        if spec.validation:
            label = "validation" if len(spec.validation) == 1 else None
            chart["label"] = "train"
            chart["extra"] = [{"key": v, "label": label or v, "urls": _metric_urls(base, [run], v)}
                              for v in spec.validation]
            chart_of.update((v, i) for v in spec.validation)
    children_metric_keys = sorted({k for c in children for k in c.data.metrics})[:8]
    media = collect_media(view, root_files, tags, base) if view is not None else Media()
    return ui.render(request, "run.html", media=media, run=run, exp=exp, parent=parent, children=children,
                     children_metric_keys=children_metric_keys, params=dict(sorted(run.data.params.items())),
                     duration=fmt_duration(run.info.start_time, run.info.end_time),
                     root_files=root_files, artifact_error=artifact_error, summary=summary, cards=cards,
                     more_models=model_ids[MAX_MODELS_ON_RUN:], user_tags=user_tags, system_tags=system_tags,
                     metrics=[m for m in sorted(run.data._metric_objs, key=lambda m: m.key)],
                     chart_data=chart_data, chart_groups=groups, chart_of=chart_of, note=tags.get("mlflow.note.content", ""),
                     artifact_owner={"owner": "run", "id": run.info.run_id})


# ---------------------------------------------------------------------- compare
def _compare_ids(request: Request, store: Any) -> tuple[list[str], Any]:
    ids: list[str] = []
    for value in request.query_params.getlist("run_ids"):
        ids += [x.strip() for x in value.split(",") if x.strip()]
    parent = None
    parent_id = (request.query_params.get("parent") or "").strip()
    if parent_id:
        parent = store.get_run(parent_id)
        ids += [c.info.run_id for c in _children(store, parent)]
    seen: dict[str, None] = dict.fromkeys(ids)
    ids = list(seen)
    if len(ids) > MAX_COMPARE:
        raise InvalidParameterValue(f"Too many runs to compare ({len(ids)}): at most {MAX_COMPARE}.")
    return ids, parent


def load_runs(store: Any, ids: list[str]) -> list[Any]:
    """Runs by id, in that order: one search per experiment rather than one read per run."""
    if not ids:
        return []
    first = store.get_run(ids[0])
    found = {first.info.run_id: first}
    rest = [i for i in ids[1:] if i not in found]
    if rest:
        quoted = ", ".join("'" + i.replace("'", "") + "'" for i in rest)
        for r in store.search_runs([first.info.experiment_id], f"attributes.run_id IN ({quoted})",
                                   ViewType.ALL, len(rest), None, None):
            found[r.info.run_id] = r
    for i in ids:
        if i not in found:
            found[i] = store.get_run(i)  # another experiment (or missing: the error says which)
    return [found[i] for i in ids]


def _diff_rows(runs: list[Any], kind: str) -> list[dict[str, Any]]:
    keys = sorted({k for r in runs for k in getattr(r.data, kind)})
    rows = []
    for k in keys:
        values = [getattr(r.data, kind).get(k) for r in runs]
        distinct = {repr(v) for v in values}
        rows.append({"key": k, "cells": values, "differs": len(distinct) > 1})
    return rows


def compare(ui: UI, request: Request) -> Response:
    ids, parent = _compare_ids(request, ui.store)
    runs = load_runs(ui.store, ids)
    base = request.scope.get("root_path", "").rstrip("/")
    params = _diff_rows(runs, "params")
    metric_rows = _diff_rows(runs, "metrics")
    keys = [r["key"] for r in metric_rows]
    chart_data = _chart_data(base, runs, keys)
    chart_data["parcoords"] = {
        "params": {r["key"]: r["cells"] for r in params if r["differs"]},
        "metrics": {r["key"]: r["cells"] for r in metric_rows},
    } if len(runs) > 1 else None
    diff_only = request.query_params.get("diff") == "1"
    exp_names = {e: ui.store.get_experiment(e).name for e in dict.fromkeys(r.info.experiment_id for r in runs)}
    return ui.render(request, "compare.html", runs=runs, parent=parent, params=params, metric_rows=metric_rows,
                     chart_data=chart_data, diff_only=diff_only, exp_names=exp_names,
                     durations=[fmt_duration(r.info.start_time, r.info.end_time) for r in runs],
                     preload=chart_data["charts"][0]["urls"] if chart_data["charts"] else [])


# ---------------------------------------------------------------------- models
def models(ui: UI, request: Request) -> Response:
    token = request.query_params.get("page_token") or None
    experiments = readable_of(request, EXPERIMENT)
    page = ui.store.search_logged_models(None, None, 100, None, token, readable=experiments)
    exp_names = {e.experiment_id: e.name for e in ui.store.search_experiments(ViewType.ALL, 50000, None, None, None,
                                                                              readable=experiments)}
    registered: list[RegisteredModel] = []
    reg_error = ""
    reg_token = None
    try:
        found = ui.store.search_registered_models(
            max_results=100, page_token=request.query_params.get("reg_page_token") or None,
            readable=readable_of(request, REGISTERED_MODEL))
        registered, reg_token = list(found), found.token
    except MltrailException as e:  # a stale page token: the logged models still show
        reg_error = e.message
    return ui.render(request, "models.html", models=list(page), token=page.token, exp_names=exp_names,
                     registered=registered, reg_error=reg_error, reg_token=reg_token)


def logged_model(ui: UI, request: Request) -> Response:
    model = ui.store.get_logged_model(request.path_params["model_id"])
    exp = ui.store.get_experiment(model.experiment_id)
    card = model_card(ui.ctx, model, _tracking_uri(request))
    root_files: list[dict[str, Any]] = []
    if card.artifacts is not None:
        try:
            root_files = card.artifacts.list("")
        except MltrailException as e:
            card.error = card.error or e.message
    return ui.render(request, "logged_model.html", model=model, exp=exp, card=card, root_files=root_files,
                     artifact_owner={"owner": "model", "id": model.model_id})


def registered_model(ui: UI, request: Request) -> Response:
    name = request.path_params["name"]
    rm = ui.store.get_registered_model(name)
    quoted = name.replace("'", "\\'")
    versions = sorted(ui.store.search_model_versions(f"name = '{quoted}'"), key=lambda v: int(v.version),
                      reverse=True)
    aliases = dict(rm.aliases)
    tracking = _tracking_uri(request)
    rows = []
    for v in versions:
        rows.append({"v": v, "aliases": sorted(a for a, version in aliases.items() if str(version) == str(v.version)),
                     "tags": dict(v.tags)})
    uri = f"models:/{name}@{next(iter(sorted(aliases)))}" if aliases else (
        f"models:/{name}/{versions[0].version}" if versions else f"models:/{name}/1")
    return ui.render(request, "registered_model.html", rm=rm, rows=rows, aliases=aliases,
                     tags=dict(rm.tags), snippets=snippets(uri, tracking, [], None),
                     sharing=shared_with(ui.ctx, request, REGISTERED_MODEL, rm.name))
