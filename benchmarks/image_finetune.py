"""Does training the top EfficientNet blocks help? A small same-run comparison on fashion.

Usage: .venv/bin/python benchmarks/image_finetune.py [--train N] [--test N] [--blocks K]
Trains the `image` kind twice on the first N train photos (frozen backbone vs the top K
blocks fine-tuned for one epoch with augmentation) and scores both on the first N test
photos. Writes benchmarks/results/image_finetune.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fashion"
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=2)
    args = parser.parse_args()

    from taxonomist.items import Item
    from taxonomist.models import model_class
    from taxonomist.taxonomy_loaders import from_labels

    train = pd.read_csv(DATA / "train.csv").iloc[: args.train]
    test = pd.read_csv(DATA / "test.csv").iloc[: args.test]
    tax = from_labels(pd.concat([train.category, test.category]))
    items = [Item("", str(DATA / p)) for p in train.image]
    labels = [tax.by_path(c).id for c in train.category]
    test_items = [Item("", str(DATA / p)) for p in test.image]
    gold = [tax.by_path(c).id for c in test.category]
    cut = len(items) * 9 // 10
    out = {}
    for name, extra in (("frozen", {}), (f"top {args.blocks} blocks fine-tuned", {
        "finetune_blocks": args.blocks, "finetune_epochs": 1})):  # fmt: skip
        cls = model_class("image")
        model = cls(tax, cls.config_class.from_dict(extra))
        t0 = time.perf_counter()
        model.fit(items[:cut], labels[:cut], items[cut:], labels[cut:])
        fit_s = time.perf_counter() - t0
        pred = [p.best.category_id for p in model.predict(test_items)]
        acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
        out[name] = {"leaf_accuracy": round(acc, 4), "train_seconds": round(fit_s, 1)}
        print(name, out[name], flush=True)
    (ROOT / "benchmarks" / "results" / "image_finetune.json").write_text(
        json.dumps(
            {"train_rows": len(items), "test_rows": len(test_items), "results": out}, indent=2
        )
    )


if __name__ == "__main__":
    main()
