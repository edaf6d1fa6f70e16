"""Zero-shot benchmark: tree decoding vs flat nearest-path cosine, same encoder, same run.

Reads the development data in ../shared/data (skips with a message when it is absent).
Usage: .venv/bin/python benchmarks/zeroshot.py [--encoder minilm] [--limit N]
Writes benchmarks/results/zeroshot.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from taxonomist.encoders import EmbeddingCache, build_encoder_set
from taxonomist.evaluation import evaluate
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.zeroshot import ZeroShotClassifier, ZeroShotConfig, flat_nearest_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def run(dataset: str, encoder_name: str, limit: int | None, split: str = "test") -> list[dict]:
    train = pd.read_csv(DATA / dataset / "train.csv", dtype=str, keep_default_na=False)
    test = pd.read_csv(DATA / dataset / f"{split}.csv", dtype=str, keep_default_na=False)
    if limit:
        test = test.sample(n=min(limit, len(test)), random_state=0)
    # the label space is known (its category names), the labels of the products are not
    taxonomy = from_labels(pd.concat([train.category, test.category]), name=dataset)
    texts = test.title.tolist()
    gold = [tuple(c.split(" > ")) for c in test.category]
    encoders = build_encoder_set(encoder_name, cache=EmbeddingCache())
    encoders.for_language("en").encode(texts)  # warm the cache so timings compare decoding
    rows = []

    def score(method: str, paths, seconds: float) -> None:
        m = evaluate(gold, paths).metrics
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "n": len(gold),
                "leaf_accuracy": m["accuracy"],
                "level1_accuracy": m["accuracy_level_1"],
                "macro_f1": m["f1_macro"],
                "hierarchical_f1": m["hierarchical_f1"],
                "seconds": round(seconds, 2),
            }
        )

    start = time.perf_counter()
    score(
        "flat nearest-path cosine",
        flat_nearest_path(taxonomy, encoders.for_language("en"), texts),
        time.perf_counter() - start,
    )
    for label, config in (
        ("tree decoding, no adaptation", ZeroShotConfig(adapt=False)),
        ("tree decoding + label-free adaptation (default)", ZeroShotConfig()),
    ):
        start = time.perf_counter()
        clf = ZeroShotClassifier(taxonomy, encoders, config)
        if config.adapt:
            clf = clf.adapt(texts)
        preds = clf.predict(texts)
        score(label, [p.best.path for p in preds], time.perf_counter() - start)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--limit", type=int, default=None, help="sample N rows")
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "train"],
        help="which split to classify (train: a check that defaults chosen on test carry over)",
    )
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: development data not found at {DATA}")
        return 0
    rows = []
    for dataset in ("pricerunner", "fashion"):
        rows.extend(run(dataset, args.encoder, args.limit, args.split))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"zeroshot-{args.split}.json").write_text(json.dumps(rows, indent=2))
    print("| dataset | method | n | leaf acc | level-1 acc | macro-F1 | hier. F1 | s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {r['method']} | {r['n']} | {r['leaf_accuracy']:.4f} | "
            f"{r['level1_accuracy']:.4f} | {r['macro_f1']:.4f} | {r['hierarchical_f1']:.4f} | "
            f"{r['seconds']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
