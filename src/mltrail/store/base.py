"""`TrackingStore`: the interface every tracking backend implements (SQL, REST), so Client stays backend-free.

A `typing.Protocol` whose required methods are abstract: a backend declares it by subclassing
(mypy then checks every signature, and Python refuses to build a backend that misses one), and a
caller types against it, never against a backend or a `getattr` probe. Methods with a body are
defaults a backend may replace with a faster or truer one. A backend that cannot do something
raises one clear `MltrailException` from that method.

Methods take and return entities from `mltrail.entities`; ids are strings; times are ms since
the epoch. One conformance suite (tests/store/test_conformance.py) runs against each backend.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Protocol

from mltrail.entities import (
    DatasetInput,
    Experiment,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
)
from mltrail.errors import MltrailException


class TrackingStore(Protocol):
    """Experiments, runs, metrics, params, tags, inputs/outputs and logged models."""

    # experiments
    @abstractmethod
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str: ...

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(self, view_type: int = 1, max_results: int = 1000, filter_string: str | None = None,
                           order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]: ...

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    # runs
    @abstractmethod
    def create_run(self, experiment_id: str, user_id: str, start_time: int | None,
                   tags: Sequence[RunTag], run_name: str | None) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run_info(self, run_id: str, run_status: str | None, end_time: int | None,
                        run_name: str | None) -> RunInfo: ...

    @abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abstractmethod
    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = ()) -> None: ...

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, params=[param])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.log_batch(run_id, tags=[tag])

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList[Metric]: ...

    @abstractmethod
    def get_metric_history_sampled(self, run_id: str, metric_key: str, max_points: int,
                                   min_step: int | None = None, max_step: int | None = None) -> list[Metric]:
        """At most about `max_points` points: per bucket the min and max, with the first and last kept."""

    def get_metric_series_sampled(self, run_ids: Sequence[str], metric_key: str, max_points: int,
                                  min_step: int | None = None,
                                  max_step: int | None = None) -> list[list[tuple[int, int, float | None]]]:
        """`get_metric_history_sampled` of several runs, as (step, timestamp, value or None for NaN)."""
        out = []
        for run_id in run_ids:
            points = self.get_metric_history_sampled(run_id, metric_key, max_points, min_step, max_step)
            out.append([(p.step, p.timestamp, None if math.isnan(p.value) else p.value) for p in points])
        return out

    @abstractmethod
    def search_runs(self, experiment_ids: Sequence[str], filter_string: str | None = None,
                    run_view_type: int = 1, max_results: int = 1000, order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]: ...

    @abstractmethod
    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None,
                   models: Sequence[LoggedModelInput] | None = None) -> None: ...

    @abstractmethod
    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None: ...

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[tuple[str, str, str, str | None]]:
        """The datasets runs of these experiments used, as MLflow's search-datasets summarises them.

        One `(experiment_id, name, digest, context)` per distinct combination, where `context` is
        the input's `mlflow.data.context` tag (None without one); at most 1,000.
        """
        raise MltrailException(f"{type(self).__name__} cannot search datasets: ask a tracking server or a "
                               "database store.", "BAD_REQUEST")

    # logged models
    @abstractmethod
    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModel: ...

    @abstractmethod
    def get_logged_model(self, model_id: str) -> LoggedModel: ...

    @abstractmethod
    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel: ...

    @abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None: ...

    @abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    @abstractmethod
    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None: ...

    @abstractmethod
    def delete_logged_model(self, model_id: str) -> None: ...

    @abstractmethod
    def search_logged_models(self, experiment_ids: Sequence[str] | None = None, filter_string: str | None = None,
                             max_results: int = 100, order_by: Sequence[str] | None = None,
                             page_token: str | None = None) -> PagedList[LoggedModel]: ...

    def log_logged_model_metrics(self, model_id: str, run_id: str, metrics: Sequence[Metric]) -> None:
        """Link metric points a run logged with `model_id` to that logged model (the server's side of log-batch)."""
        raise MltrailException(f"{type(self).__name__} does not link metrics to logged models: log them with "
                               "log_batch and a model_id, which the tracking server links.", "BAD_REQUEST")

    # counting and flushing
    def count_runs(self, experiment_ids: Sequence[str]) -> dict[str, int]:
        """The number of active runs in each experiment (experiments without runs may be left out)."""
        counts: dict[str, int] = {}
        for experiment_id in experiment_ids:
            total, token = 0, None
            while True:
                page = self.search_runs([experiment_id], max_results=1000, page_token=token)
                total += len(page)
                token = page.token
                if not token:
                    break
            counts[experiment_id] = total
        return counts

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every accepted log call is stored; stores that write synchronously have nothing to wait for.

        `timeout` (seconds) bounds the wait; None means MLTRAIL_FLUSH_TIMEOUT.
        """
        return None

    # maintenance (`mltrail gc`)
    @abstractmethod
    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]: ...

    @abstractmethod
    def purge_run(self, run_id: str) -> None: ...

    @abstractmethod
    def prune_applied_batches(self, older_than_ms: int) -> int:
        """Forget the idempotency ids of batches applied before `older_than_ms`; return how many."""
