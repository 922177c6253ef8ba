"""Distributed training: which process logs (the chief, found from TF_CONFIG or a launcher's rank).

A job started by `tf.distribute` (`TF_CONFIG`), torchrun/accelerate (`RANK`), MPI (`OMPI_COMM_WORLD_RANK`,
`PMI_RANK`), Slurm (`SLURM_PROCID`) or Horovod (`HOROVOD_RANK`) runs the same training script in every
process. Autologging and the callbacks log from the chief only, so the run holds each param, metric
and model once and the other processes never reach the tracking store. MLflow logs from every process;
`MLTRAIL_DISTRIBUTED_LOG_ALL=true` brings that back.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from mltrail.environment_variables import MLTRAIL_DISTRIBUTED_LOG_ALL
from mltrail.tensorflow._async_writer import FailureReport

# Launchers' global rank variables, each with its world-size twin, in the order they are read.
# LOCAL_RANK (a process's rank on its own machine) comes last: it names the chief only on one machine.
_LAUNCHER_RANKS = (
    ("RANK", "WORLD_SIZE"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMI_RANK", "PMI_SIZE"),
    ("HOROVOD_RANK", "HOROVOD_SIZE"),
    ("SLURM_PROCID", "SLURM_NTASKS"),
    ("LOCAL_RANK", "LOCAL_WORLD_SIZE"),
)
# TF_CONFIG task types: the chief's names, and the training replicas that count in the world size
_CHIEF_TYPES = ("chief", "master")
_TRAINING_TYPES = ("chief", "master", "worker")
_TF_CONFIG_FORM = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'


@dataclass(frozen=True)
class ProcessRole:
    """This process's place in a distributed job.

    Attributes:
        is_chief: whether it is the process that logs.
        source: the variable that said so ("TF_CONFIG", "RANK", ...), "" for a single process.
        description: what the variable said, for messages ("worker 1 of 2", "rank 3 of 8").
    """

    is_chief: bool
    source: str = ""
    description: str = "a single process"


SINGLE_PROCESS = ProcessRole(is_chief=True)


def process_role(environ: Mapping[str, str] | None = None) -> ProcessRole:
    """Find this process's role from `TF_CONFIG`, else from the first launcher rank variable set.

    Raises:
        ValueError: a malformed TF_CONFIG or a rank that is not a whole number, named with its value.
    """
    env = os.environ if environ is None else environ
    role = _tf_config_role(env.get("TF_CONFIG", ""))
    if role is not None:
        return role
    for rank_name, size_name in _LAUNCHER_RANKS:
        raw = env.get(rank_name, "").strip()
        if not raw:
            continue
        size = _whole_number(size_name, env.get(size_name, "").strip()) if env.get(size_name, "").strip() else None
        if rank_name == "SLURM_PROCID" and (size is None or size <= 1):
            continue  # every Slurm step sets SLURM_PROCID; only a multi-task step is distributed
        rank = _whole_number(rank_name, raw)
        of = f" of {size}" if size is not None else ""
        return ProcessRole(is_chief=rank == 0, source=rank_name, description=f"rank {rank}{of}")
    return SINGLE_PROCESS


def _whole_number(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"Invalid {name} environment variable: received {raw!r}; expected a whole number "
                         "(the process's rank or the job's size, as its launcher sets it).")
    return value


def _tf_config_role(raw: str) -> ProcessRole | None:
    """The role TF_CONFIG gives (the chief: task type "chief", or worker 0 in a cluster without one)."""
    if not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"Invalid TF_CONFIG environment variable: it is not JSON ({e}): received {raw[:200]!r}; "
                         f"expected {_TF_CONFIG_FORM}.") from None
    if not isinstance(config, dict):
        raise ValueError(f"Invalid TF_CONFIG environment variable: received {raw[:200]!r}; expected {_TF_CONFIG_FORM}.")
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(f"Invalid TF_CONFIG environment variable: received {raw[:200]!r}; expected {_TF_CONFIG_FORM}.")
    task_type = str(task.get("type") or "").lower()
    if not task_type:
        return None  # a cluster spec without this process's task: TensorFlow treats it as local
    index = _whole_number("TF_CONFIG task index", str(task.get("index", 0)))
    size = sum(len(cluster.get(t) or ()) for t in _TRAINING_TYPES)
    has_chief = any(cluster.get(t) for t in _CHIEF_TYPES)
    is_chief = task_type in _CHIEF_TYPES or (task_type == "worker" and index == 0 and not has_chief)
    return ProcessRole(is_chief=is_chief, source="TF_CONFIG",
                       description=f"{task_type} {index} of {size} training tasks")


def logs_here(environ: Mapping[str, str] | None = None) -> bool:
    """Whether autologging and the callbacks log from this process: the chief, or every process when
    `MLTRAIL_DISTRIBUTED_LOG_ALL` is true.

    Raises:
        ValueError: a malformed TF_CONFIG, rank or MLTRAIL_DISTRIBUTED_LOG_ALL, named with its value.
    """
    env = os.environ if environ is None else environ
    log_all = env.get(MLTRAIL_DISTRIBUTED_LOG_ALL.name)
    if log_all is not None:
        if log_all.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"Invalid {MLTRAIL_DISTRIBUTED_LOG_ALL.name} environment variable: received "
                             f"{log_all!r}; expected one of 'true', 'false', '1', '0'.")
        if log_all.lower() in ("true", "1"):
            return True
    return process_role(env).is_chief


_skip_note_lock = threading.Lock()
_skip_note_given = False


def skip_note() -> str | None:
    """The line that says why this process logs nothing: once per process, None after that."""
    global _skip_note_given
    with _skip_note_lock:
        if _skip_note_given:
            return None
        _skip_note_given = True
    try:
        role = process_role()
    except ValueError:  # pragma: no cover - logs_here raised first, so this process logs
        return None
    return (f"this process is {role.description} ({role.source}): only the chief logs, so this one logs "
            f"nothing; set {MLTRAIL_DISTRIBUTED_LOG_ALL.name}=true to log from every process.")


def should_log(silent: bool = False) -> bool:
    """`logs_here()` on the training path: a malformed variable there becomes one `AutologWarning` and
    this process logs (as every process would without the check): training never stops on it."""
    try:
        return logs_here()
    except ValueError as e:
        report = FailureReport(silent)
        report.note("distributed", f"mltrail could not tell whether this process is the chief ({e}); it logs.")
        report.emit()
        return True
