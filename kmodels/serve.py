"""`kmodels serve`: a finished run as an HTTP service (FastAPI on uvicorn), with micro-batching.

Endpoints:
- `GET /health` → `{"status": "ok"}`;
- `GET /metadata` → the task, problem, classes, decision threshold, input schema and versions;
- `POST /predict` → `{"predictions": [...]}`, one object per input: `label`, `probability` and
  `probability_<class>` (regression: `prediction`), as `kmodels predict` gives them.
  Tables take JSON rows, `{"rows": [{"column": value, ...}, ...]}` (or the bare list); image
  runs take the image's bytes (`Content-Type: image/...`) or a multipart upload (field `image`,
  repeatable).

Concurrent requests are answered together: they wait at most `max_wait_ms` for each other and
are predicted as one batch of up to `max_batch` inputs, by one model held in memory. Bad input
gets a 4xx with the message the CLI gives (malformed JSON 400, a body over `max_body_mb` 413,
rows the model cannot read 422), never a traceback.

Example:
    >>> from kmodels.serve import create_app
    >>> app = create_app("runs/tabular/20261203T120000Z")  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request  # the `serve` extra; FastAPI reads the endpoints' annotations at run time
from fastapi.responses import JSONResponse

from kmodels.errors import ConfigError, DataError, KModelsError
from kmodels.saving import SPEC

logger = logging.getLogger("kmodels")

#: Image content types `POST /predict` takes as raw bodies, and the file suffix each is decoded as.
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "image/bmp": ".bmp",
               "image/gif": ".gif", "image/webp": ".webp", "image/tiff": ".tiff"}


@dataclass
class _Job:
    inputs: Any  # a DataFrame of rows, or a list of image paths
    size: int
    future: asyncio.Future = field(repr=False)


class Service:
    """The model of one run directory, loaded once, and the micro-batching queue in front of it.

    Args:
        source: a finished run directory.
        max_batch: the most inputs predicted together.
        max_wait_ms: how long a request waits for others to share its batch.
    """

    def __init__(self, source: str | Path, max_batch: int = 256, max_wait_ms: float = 5.0) -> None:
        from kmodels.estimator import load

        if max_batch < 1 or max_wait_ms < 0:
            raise ConfigError(f"Received max_batch={max_batch}, max_wait_ms={max_wait_ms}. Expected a batch of at "
                              "least 1 and a wait >= 0.")
        self.source = Path(source)
        if not self.source.is_dir():
            raise ConfigError(f"{str(self.source)!r} is not a run directory or a SavedModel export; `kmodels serve` "
                              "serves a finished run (its model, preprocessing, classes and threshold) or what "
                              "`kmodels export` made of one.")
        self.export: _Export | None = None
        if (self.source / "saved_model.pb").is_file():
            self.export = _Export(self.source)
            self.tables = self.export.tables
        else:
            self.estimator = load(self.source)
            self.tables = self.estimator._state is not None
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kmodels-predict")  # one model call at a time

    # ---- what the endpoints answer ------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        from kmodels import __version__
        from kmodels.backend import versions
        from kmodels.spec import load_spec

        if self.export is not None:
            return {**self.export.meta, "export": str(self.source), "kmodels": __version__, "versions": versions(),
                    "max_batch": self.max_batch}
        est = self.estimator
        spec = load_spec(est.run_dir_ / SPEC)
        problem = est.problem_
        out: dict[str, Any] = {
            "run_dir": str(est.run_dir_), "task": spec.task, "problem": problem.kind,
            "classes": list(problem.class_names), "kmodels": __version__, "versions": versions(),
            "max_batch": self.max_batch,
        }
        if problem.uses_threshold:
            out["threshold"], out["positive_class"] = est.threshold_, problem.class_names[1]
        if problem.per_label_threshold:
            out["threshold"], out["label_sep"] = est.threshold_, problem.sep
        if self.tables:
            state = est._state
            out["input"] = {"kind": "json rows", "columns": state.get("feature_columns"),
                            "numeric_columns": state.get("numeric_columns")}
        else:
            out["input"] = {"kind": "image bytes", "content_types": sorted(IMAGE_TYPES),
                            "image_size": list(spec["images"]["image_size"]) if "images" in spec else None}
        return out

    def predict_now(self, inputs: Any) -> list[dict[str, Any]]:
        """Predictions for a DataFrame of rows or a list of image paths, as JSON-ready records."""
        if self.export is not None:
            return self.export.predict(inputs)
        if self.tables:
            frame = self.estimator.predict_frame(inputs)
        else:
            from kmodels.runs import RunDir

            frame = self.estimator._task_class.predict_files(RunDir(self.estimator.run_dir_), self.estimator.model_,
                                                             [Path(p) for p in inputs])
            bad = frame["error"].astype(bool)
            if bad.any():
                raise DataError(f"{int(bad.sum())} image(s) could not be read: {frame.loc[bad, 'error'].iloc[0]}")
            frame = frame.drop(columns=["path", "error"])
        return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]

    # ---- micro-batching -----------------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, inputs: Any, size: int) -> list[dict[str, Any]]:
        if self._queue is None:
            raise RuntimeError("Service.start() was not awaited")
        job = _Job(inputs, size, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = jobs[0].size
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                jobs.append(job)
                size += job.size
            await self._answer(loop, jobs)

    async def _answer(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        if len(jobs) > 1:
            merged = (pd.concat([j.inputs for j in jobs], ignore_index=True) if self.tables
                      else [p for j in jobs for p in j.inputs])
            try:
                records = await loop.run_in_executor(self._pool, self.predict_now, merged)
            except KModelsError:
                records = None  # one request's bad rows: answer each on its own, so only it fails
            if records is not None:
                start = 0
                for job in jobs:
                    if not job.future.done():
                        job.future.set_result(records[start:start + job.size])
                    start += job.size
                return
        for job in jobs:
            try:
                result = await loop.run_in_executor(self._pool, self.predict_now, job.inputs)
            except Exception as exc:  # noqa: BLE001 - handed to the request that caused it
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)


class _Export:
    """A SavedModel made by `kmodels export` (raw rows or encoded images in), served without its run directory."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        from kmodels.runs import MAX_TEXT_BYTES, regular_file
        from kmodels.task.export import METADATA_FILE
        from kmodels.task.export_rows import quiet_tensorflow

        meta_file = path / "assets" / METADATA_FILE
        if not meta_file.is_file():
            raise ConfigError(f"{str(path)!r} is a SavedModel without assets/{METADATA_FILE}; `kmodels serve` serves "
                              "the exports `kmodels export` makes of a run (which say what their input and output are).")
        self.meta = json.loads(regular_file(meta_file, MAX_TEXT_BYTES, what="export metadata").read_text())
        given = self.meta.get("input")
        if not isinstance(given, dict) or not ("columns" in given or "images" in given):
            raise ConfigError(f"{str(path)!r} holds the network alone (features in); serve the run directory, or "
                              "export it again from the run directory to get an export that takes raw rows.")
        self.tables = "columns" in given
        self.columns = {c["name"]: c["dtype"] for c in given.get("columns", [])}
        with quiet_tensorflow():
            self.model = tf.saved_model.load(str(path))
        self.classes = list(self.meta.get("classes", []))

    def predict(self, inputs: Any) -> list[dict[str, Any]]:
        import tensorflow as tf

        from kmodels import graph

        if self.tables:
            absent = [c for c in self.columns if c not in inputs.columns]
            if absent:
                raise DataError(f"missing column(s) {absent[:10]} that the model takes; expected the columns "
                                f"{list(self.columns)[:20]}.")
            kinds = {c: graph.NUMBER if d == "float64" else graph.STRING for c, d in self.columns.items()}
            feed = {k: tf.constant(v.astype(str) if v.dtype == object else v)
                    for k, v in graph.raw_inputs(inputs, kinds).items()}
        else:
            feed = tf.constant([Path(p).read_bytes() for p in inputs])
        try:
            out = {k: v.numpy() for k, v in self.model.serve(feed).items()}
        except tf.errors.InvalidArgumentError as exc:
            raise DataError(f"the model could not read the input ({exc.message.splitlines()[0][:200]}).") from None
        if "prediction" in out:
            return [{"prediction": float(v)} for v in out["prediction"]]
        records = []
        for i, (label, row) in enumerate(zip(out["label"], out["probabilities"], strict=True)):
            record: dict[str, Any] = {"label": label.decode()}
            if "probability" in out:  # one class per row (multi-label rows have a probability per label only)
                record["probability"] = float(out["probability"][i])
            record.update({f"probability_{c}": float(p) for c, p in zip(self.classes, row, strict=True)})
            records.append(record)
        return records


def create_app(source: str | Path, max_batch: int = 256, max_wait_ms: float = 5.0,
               max_body_mb: float = 16.0, max_rows: int = 10_000) -> Any:
    """The FastAPI application serving the run at `source` (see the module docstring)."""
    import contextlib

    service = Service(source, max_batch=max_batch, max_wait_ms=max_wait_ms)
    limit = int(max_body_mb * 2**20)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title="kmodels", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return service.metadata()

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return error(413, f"The request body is {int(declared):,} bytes, over the {limit:,}-byte limit "
                              "(--max-body-mb); send fewer rows per request.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return error(413, f"The request body is over the {limit:,}-byte limit (--max-body-mb); send fewer "
                                  "rows per request.")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if service.tables:
                inputs, size = _rows(bytes(body), kind, max_rows)
                records = await service.submit(inputs, size)
            else:
                with tempfile.TemporaryDirectory(prefix="kmodels-serve-") as tmp:
                    paths = await _images(request, bytes(body), kind, Path(tmp))
                    records = await service.submit(paths, len(paths))
        except _BadRequest as exc:
            return error(exc.status, str(exc))
        except KModelsError as exc:  # the CLI's message: data, config and run errors alike
            return error(422, str(exc))
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client; the log has it
            logger.exception("predict failed")
            return error(500, f"{type(exc).__name__}: {exc}")
        return {"predictions": records}

    return app


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _rows(body: bytes, kind: str, max_rows: int) -> tuple[pd.DataFrame, int]:
    """A table request's rows: JSON `{"rows": [{...}, ...]}` or the bare list."""
    if kind not in ("application/json", ""):
        raise _BadRequest(415, f"Content-Type {kind!r}: this run takes JSON rows (application/json), e.g. "
                               '{"rows": [{"column": value, ...}]}.')
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequest(400, f"The body is not valid JSON ({exc}). Send {{\"rows\": [{{\"column\": value, "
                               "...}, ...]}.") from None
    rows = payload.get("rows") if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise _BadRequest(400, 'Expected {"rows": [{"column": value, ...}, ...]}: a non-empty list of objects, '
                               "one per row.")
    if len(rows) > max_rows:
        raise _BadRequest(413, f"{len(rows):,} rows in one request, over the {max_rows:,}-row limit; split it.")
    return pd.DataFrame.from_records(rows), len(rows)


async def _images(request: Any, body: bytes, kind: str, folder: Path) -> list[str]:
    """An image request's files, written into `folder` so the run's own reader checks and decodes them."""
    if kind in IMAGE_TYPES:
        items = [(IMAGE_TYPES[kind], body)]
    elif kind == "multipart/form-data":
        async def replay() -> dict[str, Any]:  # the body was read (and size-checked) already
            return {"type": "http.request", "body": body, "more_body": False}

        form = await Request(request.scope, replay).form()
        uploads = form.getlist("image")
        if not uploads:
            raise _BadRequest(400, "A multipart request needs one or more files in the field 'image'.")
        items = []
        for upload in uploads:
            if isinstance(upload, str):
                raise _BadRequest(400, "The field 'image' must hold a file, not text.")
            suffix = Path(upload.filename or "").suffix.lower() or IMAGE_TYPES.get(upload.content_type or "", ".img")
            items.append((suffix, await upload.read()))
    else:
        raise _BadRequest(415, f"Content-Type {kind!r}: this run takes image bytes ({', '.join(sorted(IMAGE_TYPES))}) "
                               "or multipart/form-data with files in the field 'image'.")
    if not items or not all(data for _, data in items):
        raise _BadRequest(400, "The request holds no image bytes.")
    paths = []
    for i, (suffix, data) in enumerate(items):
        path = folder / f"{i}{suffix if suffix.startswith('.') and len(suffix) <= 6 else '.img'}"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def serve(source: str | Path, host: str = "127.0.0.1", port: int = 8080, max_batch: int = 256,
          max_wait_ms: float = 5.0, max_body_mb: float = 16.0, log_level: str = "info") -> None:
    """Serve the run at `source` until interrupted (`kmodels serve`)."""
    import uvicorn

    app = create_app(source, max_batch=max_batch, max_wait_ms=max_wait_ms, max_body_mb=max_body_mb)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__: Sequence[str] = ("Service", "create_app", "serve")
