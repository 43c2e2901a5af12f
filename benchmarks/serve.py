"""Benchmark: `kmodels serve` throughput and latency, with 1 and 32 rows per request.

Trains a small `tabular` run on the embedded bank data (or serves `--run RUN_DIR`), starts the
real server (uvicorn on 127.0.0.1, in this process), and sends `--requests` POST /predict calls
from `--concurrency` client threads over HTTP (urllib: a new connection per request, as a
simple client does). Reports requests/s, rows/s and the p50/p99 latency, and the same with
micro-batching off (`--max-wait-ms 0`, one request per model call) side by side.

    python -m benchmarks.serve --requests 400 --concurrency 16 --json benchmarks/results/serve.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks._harness import machine, write_json


def _server(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, server.servers[0].sockets[0].getsockname()[1]


def _post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - start


def measure(run_dir: Path, rows: list[dict], per_request: int, requests: int, concurrency: int,
            max_wait_ms: float) -> dict:
    from kmodels.serve import create_app

    server, thread, port = _server(create_app(run_dir, max_wait_ms=max_wait_ms))
    url = f"http://127.0.0.1:{port}/predict"
    bodies = [json.dumps({"rows": [rows[(i * per_request + j) % len(rows)] for j in range(per_request)]}).encode()
              for i in range(requests)]
    try:
        for body in bodies[:10]:  # warm-up: compile the model's call for these batch sizes
            _post(url, body)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = list(pool.map(lambda b: _post(url, b), bodies))
        wall = time.perf_counter() - start
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    ms = np.asarray(latencies) * 1000
    return {"rows_per_request": per_request, "micro_batching": max_wait_ms > 0, "max_wait_ms": max_wait_ms,
            "requests": requests, "concurrency": concurrency, "requests_per_s": round(requests / wall, 1),
            "rows_per_s": round(requests * per_request / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench serve", description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=None, help="a finished table run to serve (default: train one)")
    p.add_argument("--requests", type=int, default=400, help="requests per configuration")
    p.add_argument("--concurrency", type=int, default=16, help="client threads")
    p.add_argument("--rows", default="1,32", help="rows per request, comma-separated")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    import kmodels

    run_dir = args.run
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="kmodels-bench-serve-")) / "run"
        kmodels.run("tabular", overrides={"data.rows": 3000, "train.epochs": 3, "train.verbose": 0,
                                          "evaluate.importance_repeats": 0}, out=run_dir)
    spec = kmodels.load_spec(run_dir / "spec.toml")
    table = kmodels.registry.datasets.get(spec["data"]["name"])
    frame = table(**{k: v for k, v in spec["data"].items() if k != "name"}).frame
    target = json.loads((run_dir / "preprocessor.json").read_text())["target"]
    rows = json.loads(frame.drop(columns=[target]).dropna().head(512).to_json(orient="records"))
    results = [measure(run_dir, rows, int(n), args.requests, args.concurrency, wait)
               for n in args.rows.split(",") for wait in (5.0, 0.0)]
    print(f"\nkmodels serve: {args.requests} requests from {args.concurrency} client threads, run {run_dir}")
    print("| rows/request | micro-batching | requests/s | rows/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        batching = f"on ({r['max_wait_ms']:g} ms)" if r["micro_batching"] else "off"
        print(f"| {r['rows_per_request']} | {batching} | {r['requests_per_s']} | {r['rows_per_s']} | {r['p50_ms']} "
              f"| {r['p99_ms']} |")
    write_json(args.json, {"benchmark": "serve", "machine": machine(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
