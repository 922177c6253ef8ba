"""Dynamic batching: concurrent requests merged into one model call, and the results split back.

Request handlers put their (already validated) input on an asyncio queue and await a future. One
collector task per event loop takes the first waiting request, drains whatever else is queued and,
only while more requests keep arriving (a look finds new ones, or handlers are still reading and
parsing some), gives the loop a few turns to read them (bounded by `max_wait_ms` and `max_rows`). A request with no company is run at once, without waiting. The
batch runs on the single model-runner thread, so the event loop keeps accepting requests; while
the model runs, new requests queue up and form the next batch.

Requests merge only when they have the same kind of input with the same trailing dimensions and
dtypes (or the same DataFrame columns), and never when they carry `params`. If a merged call
fails, or its output cannot be split by rows, each request is run on its own, so one request's
failure is reported to it alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mltrail.models.signature import is_dataframe, is_series

_log = logging.getLogger("mltrail.serving")

# how many loop turns one "look for new arrivals" takes: a request whose bytes are already in the
# socket buffer needs about two (read + parse, then the handler task's first step)
_TURNS_PER_LOOK = 3


def _array_key(a: Any) -> tuple[Any, ...] | None:
    import numpy as np

    if not isinstance(a, np.ndarray) or a.ndim == 0 or a.shape[0] == 0:
        return None
    dtype = a.dtype.kind if a.dtype.kind in "US" else a.dtype.str
    return dtype, a.shape[1:]


def batch_key(data: Any) -> tuple[Any, ...] | None:
    """What requests must share to be merged (None: never merge this input)."""
    import numpy as np

    if isinstance(data, np.ndarray):
        k = _array_key(data)
        return None if k is None else ("array", k)
    if isinstance(data, dict) and data:
        keys = []
        lead = None
        for name, v in data.items():
            k = _array_key(v)
            if k is None or (lead is not None and v.shape[0] != lead):
                return None
            lead = v.shape[0]
            keys.append((name, k))
        return ("dict", tuple(keys))
    if isinstance(data, list) and data:
        keys = []
        lead = None
        for v in data:
            k = _array_key(v)
            if k is None or (lead is not None and v.shape[0] != lead):
                return None
            lead = v.shape[0]
            keys.append(k)
        return ("list", tuple(keys))
    if is_dataframe(data) and len(data) > 0:
        return ("frame", tuple(data.columns), tuple(str(t) for t in data.dtypes))
    return None


def rows_of(data: Any) -> int:
    """The number of rows (leading dimension) of an input `batch_key` accepted."""
    if isinstance(data, dict):
        return int(next(iter(data.values())).shape[0])
    if isinstance(data, list):
        return int(data[0].shape[0])
    if is_dataframe(data):
        return len(data)
    return int(data.shape[0])


def merge(datas: Sequence[Any]) -> Any:
    """Inputs with one `batch_key`, concatenated along rows."""
    import numpy as np

    first = datas[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(datas)
    if isinstance(first, dict):
        return {k: np.concatenate([d[k] for d in datas]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([d[i] for d in datas]) for i in range(len(first))]
    import pandas as pd

    return pd.concat(datas, ignore_index=True)


def _split_one(out: Any, sizes: Sequence[int], total: int) -> list[Any] | None:
    import numpy as np

    bounds = np.cumsum(sizes)[:-1].tolist()
    if isinstance(out, np.ndarray):
        if out.ndim == 0 or out.shape[0] != total:
            return None
        return np.split(out, bounds)
    if is_dataframe(out) or is_series(out):
        if len(out) != total:
            return None
        starts = [0, *bounds]
        return [out.iloc[s:s + n].reset_index(drop=True) for s, n in zip(starts, sizes, strict=True)]
    if hasattr(out, "numpy") and callable(out.numpy):  # a framework tensor
        return _split_one(out.numpy(), sizes, total)
    if isinstance(out, list) and len(out) == total and not any(isinstance(v, np.ndarray) for v in out):
        starts = [0, *bounds]
        return [out[s:s + n] for s, n in zip(starts, sizes, strict=True)]
    return None


def split(out: Any, sizes: Sequence[int]) -> list[Any] | None:
    """A merged call's output cut back into one output per request (None when it has no row axis)."""
    total = sum(sizes)
    if isinstance(out, dict):
        parts: dict[Any, list[Any]] = {}
        for k, v in out.items():
            p = _split_one(v, sizes, total)
            if p is None:
                return None
            parts[k] = p
        return [{k: parts[k][i] for k in out} for i in range(len(sizes))]
    if isinstance(out, list | tuple) and out and all(
            hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 for v in out):
        cols = [_split_one(v, sizes, total) for v in out]
        if any(c is None for c in cols):
            return None
        return [[c[i] for c in cols] for i in range(len(sizes))]  # type: ignore[index]
    return _split_one(out, sizes, total)


class _Item:
    __slots__ = ("data", "params", "key", "rows", "future")

    def __init__(self, data: Any, params: dict[str, Any] | None, future: asyncio.Future[Any]) -> None:
        self.data = data
        self.params = params
        self.key = None if params else batch_key(data)
        self.rows = rows_of(data) if self.key is not None else 1
        self.future = future


# a runner result: (True, output) or (False, exception)
_Result = tuple[bool, Any]


class Batcher:
    """Merges concurrent `submit` calls into model calls on one model-runner thread.

    Args:
        predict: `predict(data, params)`, called on the runner thread.
        max_wait_ms: the longest a batch keeps gathering while requests keep arriving.
        max_rows: the most rows one model call gets (a larger single request still runs, alone).
    """

    def __init__(self, predict: Callable[[Any, dict[str, Any] | None], Any], max_wait_ms: float = 2.0,
                 max_rows: int = 256) -> None:
        self._predict = predict
        self._max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self._max_rows = max(1, int(max_rows))
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mltrail-model-runner")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # requests being read and parsed on the loop right now (see `arriving`): worth a short wait
        self.arriving = 0
        # counters, for logs and tests
        self.model_calls = 0
        self.requests = 0
        self.largest_batch = 0

    @contextlib.contextmanager
    def arrival(self) -> Iterator[None]:
        """Mark a request as on its way (being read and parsed): a gathering batch waits for it."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    async def submit(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The model's output for `data` (run with whatever other requests are waiting)."""
        if self._closed:
            raise RuntimeError("The batcher is closed.")
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put_nowait(_Item(data, params, fut))  # type: ignore[union-attr]
        return await fut

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue = asyncio.Queue()
        self._task = loop.create_task(self._collect(), name="mltrail-batch-collector")

    def _drain(self, pending: deque[_Item]) -> int:
        q = self._queue
        n = 0
        while not q.empty():  # type: ignore[union-attr]
            pending.append(q.get_nowait())  # type: ignore[union-attr]
            n += 1
        return n

    def _pending_rows(self, pending: deque[_Item]) -> int:
        return sum(i.rows for i in pending)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        q = self._queue
        pending: deque[_Item] = deque()
        while True:
            if not pending:
                pending.append(await q.get())  # type: ignore[union-attr]
            deadline = loop.time() + self._max_wait
            arrived = self._drain(pending)
            # adaptive: keep gathering only while requests are arriving (each look finds new ones, or some
            # are being read and parsed right now)
            while (arrived or self.arriving) and loop.time() < deadline and \
                    self._pending_rows(pending) < self._max_rows:
                for _ in range(_TURNS_PER_LOOK):
                    await asyncio.sleep(0)
                arrived = self._drain(pending)
            groups = self._plan(pending)
            if not groups:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._run, groups)
            except Exception as e:  # the executor was shut down under us, or a bug: fail these, keep serving
                results = [[(False, e)] * len(g) for g in groups]
            for group, outs in zip(groups, results, strict=True):
                for item, (ok, value) in zip(group, outs, strict=True):
                    if item.future.done():
                        continue
                    if ok:
                        item.future.set_result(value)
                    else:
                        item.future.set_exception(value)

    def _plan(self, pending: deque[_Item]) -> list[list[_Item]]:
        """Take up to `max_rows` rows of pending requests, grouped by batch key (order kept)."""
        groups: dict[Any, list[_Item]] = {}
        singles: list[list[_Item]] = []
        order: list[Any] = []
        rows = 0
        while pending:
            item = pending[0]
            if item.future.done():  # the client went away
                pending.popleft()
                continue
            if rows and rows + item.rows > self._max_rows:
                break
            pending.popleft()
            rows += item.rows
            if item.key is None:
                singles.append([item])
                order.append(len(singles) - 1)
            else:
                if item.key not in groups:
                    groups[item.key] = []
                    order.append(("k", item.key))
                groups[item.key].append(item)
        return [singles[o] if isinstance(o, int) else groups[o[1]] for o in order]

    def _run(self, groups: list[list[_Item]]) -> list[list[_Result]]:
        """On the runner thread: one model call per group."""
        out = [self._run_group(g) for g in groups]
        self.model_calls += len(groups)
        self.requests += sum(len(g) for g in groups)
        self.largest_batch = max(self.largest_batch, *(len(g) for g in groups))
        return out

    def _call(self, data: Any, params: dict[str, Any] | None) -> _Result:
        try:
            return True, self._predict(data, params)
        except Exception as e:
            return False, e

    def _run_group(self, items: list[_Item]) -> list[_Result]:
        if len(items) == 1:
            return [self._call(items[0].data, items[0].params)]
        try:
            merged = merge([i.data for i in items])
        except Exception:  # e.g. pandas frames that do not concatenate: no harm in running them apart
            return [self._call(i.data, i.params) for i in items]
        ok, out = self._call(merged, None)
        try:
            parts = split(out, [i.rows for i in items]) if ok else None
        except Exception:
            parts = None
        if parts is None:
            if ok:
                _log.debug("The model's output has no row axis to split; running %d requests one by one.",
                           len(items))
            return [self._call(i.data, i.params) for i in items]
        return [(True, p) for p in parts]

    def close(self) -> None:
        """Stop collecting and let the runner thread end; waiting requests fail."""
        self._closed = True
        if self._task is not None and not self._task.done():
            loop = self._task.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._task.cancel)
        self._executor.shutdown(wait=False, cancel_futures=True)
