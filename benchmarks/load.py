"""A bounded HTTP load: a fixed number of POSTs over keep-alive connections, loopback only."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from typing import Any


def run(port: int, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    """Send ``requests`` POSTs to /invocations with ``concurrency`` clients; all must be 200."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        local = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            start = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            local.append(time.perf_counter() - start)
            if response.status != 200:
                errors.append(f"{response.status}: {data[:200]!r}")
        connection.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    ordered = sorted(latencies)
    return {
        "rps": requests / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def body(rows: list[list[float]], columns: list[str]) -> bytes:
    """An MLflow `dataframe_split` request body."""
    return json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()
