"""`kmodels serve`: a real uvicorn server on 127.0.0.1, called with a real HTTP client (urllib)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kmodels

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


class Server:
    """uvicorn in a thread on a free port of 127.0.0.1."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def call(self, path, body=None, content_type="application/json", method=None):
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method or ("POST" if data else "GET"),
                                         headers={"Content-Type": content_type} if data is not None else {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(toy_run):
    from kmodels.serve import create_app

    with Server(create_app(toy_run.run_dir, max_wait_ms=20)) as running:
        yield running


@pytest.fixture(scope="module")
def rows():
    frame = kmodels.registry.datasets.get("toy_blobs")(rows=40, seed=4).frame.drop(columns=["label"])
    return frame


def test_health_and_metadata(server, toy_run):
    assert server.call("/health") == (200, {"status": "ok"})
    status, meta = server.call("/metadata")
    assert status == 200 and meta["task"] == "toy_task" and meta["classes"] == ["a", "b"]
    assert meta["problem"] == "binary" and meta["positive_class"] == "b" and meta["threshold"] == 0.5
    assert meta["input"]["columns"] == ["f0", "f1", "f2", "f3"] and "keras" in meta["versions"]


def test_predictions_match_kmodels_predict(server, toy_run, rows):
    status, body = server.call("/predict", {"rows": rows.head(32).to_dict("records")})
    assert status == 200 and len(body["predictions"]) == 32, body
    expected = kmodels.predict(toy_run.run_dir, rows.head(32))
    assert [p["label"] for p in body["predictions"]] == list(expected["label"])
    np.testing.assert_allclose([p["probability_b"] for p in body["predictions"]], expected["probability_b"],
                               atol=1e-5)


def test_a_hundred_concurrent_requests_are_all_answered_correctly(server, toy_run, rows):
    expected = kmodels.predict(toy_run.run_dir, rows)

    def one(i):
        return server.call("/predict", [rows.iloc[i % len(rows)].to_dict()])

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(100)))
    assert all(status == 200 for status, _ in answers)
    for i, (_, body) in enumerate(answers):
        assert body["predictions"][0]["label"] == expected["label"].iloc[i % len(rows)]
        assert abs(body["predictions"][0]["probability_b"] - expected["probability_b"].iloc[i % len(rows)]) < 1e-5


@pytest.mark.parametrize("body,content_type,status,match", [
    (b'{"rows": [{"f0": 1,', "application/json", 400, "not valid JSON"),
    ({"rows": []}, "application/json", 400, "non-empty list of objects"),
    ({"rows": [{"f0": 1.0, "f1": 2.0}]}, "application/json", 422, r"missing column\(s\) \['f2', 'f3'\]"),
    ({"rows": [{"f0": "many", "f1": 1, "f2": 1, "f3": 1}]}, "application/json", 422, "not numbers"),
    (b"f0,f1\n1,2\n", "text/csv", 415, "takes JSON rows"),
])
def test_bad_requests_get_4xx_with_the_clis_message(server, body, content_type, status, match):
    import re

    got, answer = server.call("/predict", body, content_type=content_type)
    assert got == status and re.search(match, answer["error"]), answer


def test_a_bad_request_does_not_fail_the_requests_batched_with_it(server, rows):
    good = [rows.iloc[0].to_dict()]
    bad = [{"f0": "x", "f1": 1, "f2": 1, "f3": 1}]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda b: server.call("/predict", b), [good, bad] * 8))
    assert [status for status, _ in answers] == [200, 422] * 8


def test_a_huge_body_is_refused(toy_run):
    from kmodels.serve import create_app

    with Server(create_app(toy_run.run_dir, max_body_mb=0.01)) as small:
        status, answer = small.call("/predict", b"[" + b'{"f0": 1},' * 5000 + b"{}]")
        assert status == 413 and "over the 10,485-byte limit" in answer["error"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_serve_command_starts_a_server_and_stops_on_sigterm(toy_run):
    """The one subprocess smoke of `kmodels serve`: --help-style flags, a real port, /health, clean exit."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = ("import sys, tests._items; from kmodels.cli import main; "  # the toy task is registered by the tests
            f"sys.exit(main(['-q', 'serve', {str(toy_run.run_dir)!r}, '--port', '{port}']))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "kmodels serve did not answer"
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal, so the process ends as SIGTERM's default would
    assert proc.returncode in (0, -signal.SIGTERM) and b"Traceback" not in proc.stderr.read()


def test_a_raw_rows_export_is_served_without_its_run_directory(toy_run, rows, tmp_path):
    """`kmodels serve EXPORT`: the SavedModel alone answers as the run does; its metadata says what it takes;
    a missing column is a 422 naming it; an export of the bare network is refused with what to do instead."""
    from kmodels.errors import ConfigError
    from kmodels.serve import create_app

    export = tmp_path / "export"
    kmodels.export(toy_run.run_dir, export, "saved_model")
    with Server(create_app(export, max_wait_ms=5)) as running:
        status, meta = running.call("/metadata")
        assert status == 200 and meta["classes"] == ["a", "b"] and meta["export"] == str(export)
        assert [c["name"] for c in meta["input"]["columns"]] == ["f0", "f1", "f2", "f3"]
        status, body = running.call("/predict", {"rows": rows.head(8).to_dict("records")})
        assert status == 200, body
        expected = kmodels.predict(toy_run.run_dir, rows.head(8))
        assert [p["label"] for p in body["predictions"]] == list(expected["label"])
        np.testing.assert_allclose([p["probability_b"] for p in body["predictions"]], expected["probability_b"],
                                   atol=1e-5)
        status, body = running.call("/predict", {"rows": [{"f0": 1.0}]})
        assert status == 422 and "f1" in json.dumps(body)
    network = tmp_path / "network"
    kmodels.export(toy_run.run_dir / "model.keras", network, "saved_model")
    with pytest.raises(ConfigError, match="network alone"):
        create_app(network)
