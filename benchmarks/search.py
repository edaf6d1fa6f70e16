"""Taxonomy search latency on the bundled Shopify taxonomy (10,281 categories, en + zh).

Compares, in one run, the word index behind `Taxonomy.search` with the scan it replaced
(every word as a substring of every category's names and path, re-normalised per query),
on type-ahead queries in English and Chinese. Needs only the package (no ../shared data).
Usage: .venv/bin/python benchmarks/search.py [--repeat 20]
Writes benchmarks/results/search.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from taxonomist.search import SearchIndex
from taxonomist.taxonomy import Category, Taxonomy, _norm
from taxonomist.taxonomy_loaders import load_taxonomy

RESULTS = Path(__file__).resolve().parent / "results"

# what someone types into a category picker: words, plurals, prefixes, Chinese
QUERIES = [
    "phone case",
    "cases phone",
    "mobile phones",
    "washing machine",
    "tablet",
    "tablet cas",
    "t-shirt",
    "crew socks",
    "sock",
    "batteri",
    "dog food",
    "garden hose",
    "coffee",
    "laptop bag",
    "led light bulbs",
    "手机",
    "手机壳",
    "咖啡",
    "电子产品 手机",
    "z",
]


def scan_search(taxonomy: Taxonomy, query: str, limit: int = 20) -> list[Category]:
    """The search as it was before the index: substrings over names and path, every query."""
    words = _norm(query).split()
    if not words:
        return []
    scored = []
    for pos, cat in enumerate(taxonomy):
        names = list(cat.names.values()) or [cat.name]
        norm_names = [_norm(n) for n in names]
        haystack = " ".join(norm_names + [_norm(cat.path_str)])
        if not all(w in haystack for w in words):
            continue
        q = " ".join(words)
        if q in norm_names:
            rank = 0
        elif any(n.startswith(q) for n in norm_names):
            rank = 1
        elif any(all(w in n for w in words) for n in norm_names):
            rank = 2
        else:
            rank = 3
        scored.append(((rank, cat.depth, pos), cat))
    scored.sort(key=lambda item: item[0])
    return [cat for _, cat in scored[:limit]]


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    taxonomy = load_taxonomy("shopify")
    build = timed(lambda: SearchIndex(taxonomy, None), 3)
    taxonomy.search("warm")  # the index kept with the taxonomy, as every caller gets it
    per_query = {"index": [], "scan": []}
    hits = {"index": 0, "scan": 0}
    for query in QUERIES:
        per_query["index"] += timed(lambda q=query: taxonomy.search(q), args.repeat)
        per_query["scan"] += timed(
            lambda q=query: scan_search(taxonomy, q), max(args.repeat // 10, 1)
        )
        hits["index"] += bool(taxonomy.search(query))
        hits["scan"] += bool(scan_search(taxonomy, query))

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median_ms": statistics.median(ordered),
            "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
            "max_ms": ordered[-1],
        }

    result = {
        "taxonomy": f"shopify {taxonomy.version} ({len(taxonomy)} categories)",
        "queries": len(QUERIES),
        "index_build_ms_median": statistics.median(build),
        "index": {**summary(per_query["index"]), "queries_with_hits": hits["index"]},
        "scan": {**summary(per_query["scan"]), "queries_with_hits": hits["scan"]},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    ratio = result["scan"]["median_ms"] / result["index"]["median_ms"]
    print(
        f"{result['taxonomy']}, {len(QUERIES)} queries; index built once in "
        f"{result['index_build_ms_median']:.0f} ms\n"
    )
    print("| search | median ms/query | p95 | max | queries with hits |")
    print("|---|---:|---:|---:|---:|")
    for name in ("index", "scan"):
        r = result[name]
        print(
            f"| {name} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['max_ms']:.2f} | "
            f"{r['queries_with_hits']}/{len(QUERIES)} |"
        )
    print(f"\nscan / index median: {ratio:.0f}x")


if __name__ == "__main__":
    main()
