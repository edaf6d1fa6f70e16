"""Serving benchmark: `taxonomist serve` under load from `wrk`, against the batch path.

Usage:
    .venv/bin/python benchmarks/serve.py --model DIR [--seconds 10] [--rows 2000]

Serves one model directory (pricerunner's `balanced` in docs/benchmarks.md) on 127.0.0.1 and
measures, in one run, with the embedding cache off everywhere (repeated titles would else be
answered from the cache, not the model):

1. the batch path: `load_classifier` + `predict_products` over pricerunner/test.csv titles in
   batches of 512, as `taxonomist classify` runs a file (items/s, model already loaded);
2. seconds from starting `taxonomist serve` to `/readyz` answering 200;
3. single-product requests with 1 and with 16 concurrent clients (p50/p99 latency, req/s);
4. batches of 32 products per request with 1 and 4 clients (items/s);
5. the server's RSS after the load.

Every load run is bounded (`--seconds`); the server listens on 127.0.0.1 only and is stopped
at the end. Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
NO_CACHE = {"TAXONOMIST_NO_CACHE": "1"}


def titles(data: Path, rows: int) -> list[str]:
    import pandas as pd

    test = pd.read_csv(data / "pricerunner" / "test.csv", dtype=str, keep_default_na=False)
    return test.title.tolist()[:rows]


def batch_path(model: Path, texts: list[str]) -> dict:
    """Items/s of the file path: 512-row batches through one loaded Classifier."""
    from taxonomist.classifier import load_classifier
    from taxonomist.data.readers import Product

    clf = load_classifier(model, warm=True)
    products = [Product(str(i), t, i + 2) for i, t in enumerate(texts)]
    started = time.perf_counter()
    for i in range(0, len(products), 512):
        clf.predict_products(products[i : i + 512], top_k=1)
    seconds = time.perf_counter() - started
    return {"items": len(texts), "seconds": seconds, "items_per_s": len(texts) / seconds}


def cli_classify(model: Path, texts: list[str]) -> dict:
    """`taxonomist classify` on a CSV of the same titles, end to end (start-up included)."""
    import csv

    exe = Path(sys.executable).with_name("taxonomist")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "titles.csv"
        with open(data, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "title"])
            writer.writerows((i, t) for i, t in enumerate(texts))
        cmd = [str(exe), "classify", str(data), "--model", str(model), "--out"]
        started = time.perf_counter()
        subprocess.run([*cmd, str(Path(tmp) / "out.csv")], check=True, capture_output=True)
        seconds = time.perf_counter() - started
    return {"items": len(texts), "seconds": seconds, "items_per_s": len(texts) / seconds}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lua_script(bodies: list[str], path: str) -> str:
    """A wrk script that cycles through `bodies` (each thread from its own offset)."""
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    return f"""
local bodies = {{
{items}
}}
local counter = 0
local threads = 0
function setup(thread)
  thread:set("start", threads * 997)
  threads = threads + 1
end
function init(args)
  counter = start or 0
end
function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, body)
end
"""


def parse_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, script: Path, clients: int, seconds: int) -> dict:
    threads = min(clients, 2)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{clients}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, flags=re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "clients": clients,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": parse_ms(latency["50"]),
        "p99_ms": parse_ms(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "command": " ".join(cmd[:-3]) + " ...",
    }


def model_calls(base: str) -> tuple[float, float]:
    """(model calls, products) so far, from the server's own metrics."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    found = dict(re.findall(r'taxonomist_model_batch_items_(count|sum)\{model="m"\} (\S+)', text))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 600) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server not ready in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--seconds", type=int, default=10, help="Length of each load run.")
    parser.add_argument("--rows", type=int, default=2000, help="Test titles to use.")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    parser.add_argument("--data", type=Path, default=DATA, help="The shared data folder.")
    args = parser.parse_args()
    if not (args.data / "pricerunner" / "test.csv").exists():
        print(f"skipped: development data not found at {args.data}")
        return 0
    os.environ.update(NO_CACHE)
    texts = titles(args.data, args.rows)
    result: dict = {"model": str(args.model), "rows": len(texts), "seconds": args.seconds}
    result["batch_path"] = batch_path(args.model, texts)
    print(f"batch path: {result['batch_path']['items_per_s']:.0f} items/s", flush=True)
    result["cli_classify"] = cli_classify(args.model, texts)
    print(f"classify CLI, start-up included: {result['cli_classify']['seconds']:.1f} s", flush=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("taxonomist")  # the venv's entry point
    cmd = [str(exe), "serve", "--model", str(args.model), "--name", "m", "--open"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **NO_CACHE}
    # the server logs a line per request: to a file, never to a pipe nobody reads
    log = tempfile.NamedTemporaryFile("w", prefix="serve-", suffix=".log", delete=False)  # noqa: SIM115
    print(f"server log: {log.name}", flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    try:
        result["start_to_ready_s"] = wait_ready(base, proc)
        print(f"ready after {result['start_to_ready_s']:.1f} s", flush=True)
        result["rss_ready_mib"] = rss_mib(proc.pid)
        url = f"{base}/v1/models/m/classify"
        with tempfile.TemporaryDirectory() as tmp:
            singles = [json.dumps({"product": {"title": t}, "top_k": 1}) for t in texts]
            batches = [
                json.dumps({"products": [{"title": t} for t in texts[i : i + 32]], "top_k": 1})
                for i in range(0, len(texts) - 31, 32)
            ]
            single_lua = Path(tmp) / "single.lua"
            single_lua.write_text(lua_script(singles, "/v1/models/m/classify"))
            batch_lua = Path(tmp) / "batch.lua"
            batch_lua.write_text(lua_script(batches, "/v1/models/m/classify"))
            run_wrk(url, single_lua, 1, 2)  # warm-up: first requests pay lazy set-up
            runs = {}
            for label, script, clients, per_request in (
                ("single_1_client", single_lua, 1, 1),
                ("single_16_clients", single_lua, 16, 1),
                ("batch32_1_client", batch_lua, 1, 32),
                ("batch32_4_clients", batch_lua, 4, 32),
            ):
                calls_before, items_before = model_calls(base)
                run = run_wrk(url, script, clients, args.seconds)
                calls_after, items_after = model_calls(base)
                run["items_per_s"] = run["requests_per_s"] * per_request
                run["products_per_model_call"] = (items_after - items_before) / max(
                    1.0, calls_after - calls_before
                )
                runs[label] = run
                print(
                    f"{label}: {run['requests_per_s']:.1f} req/s, {run['items_per_s']:.0f} "
                    f"items/s, p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, "
                    f"non-2xx {run['non_2xx']}, "
                    f"{run['products_per_model_call']:.1f} products per model call",
                    flush=True,
                )
            result["runs"] = runs
        result["rss_after_load_mib"] = rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    runs = result["runs"]
    batch = result["batch_path"]["items_per_s"]
    result["ratios"] = {
        "batch_path_over_http_batch32_1_client": batch / runs["batch32_1_client"]["items_per_s"],
        "batch_path_over_http_batch32_4_clients": batch / runs["batch32_4_clients"]["items_per_s"],
        "single_16_over_1_client_items": runs["single_16_clients"]["items_per_s"]
        / runs["single_1_client"]["items_per_s"],
    }
    print(json.dumps(result["ratios"], indent=2))
    print(f"RSS after load: {result['rss_after_load_mib']:.0f} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
