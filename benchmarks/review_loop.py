"""Review-loop benchmark: automation rate at 99% precision, and a simulated reviewer.

Usage:
  .venv/bin/python benchmarks/review_loop.py automation [--datasets pricerunner,fashion]
      [--presets fast,balanced]
  .venv/bin/python benchmarks/review_loop.py reviewer [--datasets pricerunner,fashion]
      [--answers 500] [--seed 13]

`automation`: train each preset on the full training split (thresholds chosen on its own
validation split, target 0.99), classify the test split, and report the share of test
products that clear their category's threshold and the precision among them; the peer is the
same model with one global threshold (chosen on the same validation rows for the same
target) instead of one per category.

`reviewer`: the review loop end to end with the `fast` preset through the model store:
version 1 trains on half of the training split (its first version cuts the frozen holdout);
the other half is classified into the review queue; a simulated reviewer answers the first N
items in queue order with the gold label; `retrain` trains a candidate and the gate decides.
In the same run, a second store answers N products picked at random from the whole pool
(queued or not: the usual active-learning baseline), and a third N items picked at random
from the queue itself.
Reports test accuracy of version 1 and of each candidate, and whether each was promoted.

Writes benchmarks/results/review_loop-<part>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(
    os.environ.get(
        "TAXONOMIST_BENCH_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
RESULTS = Path(__file__).resolve().parent / "results"


def read_split(dataset: str, split: str) -> tuple[list[str], list[str], list[str]]:
    """(ids, titles, label paths) as the package's reader sees them."""
    from taxonomist.data import ColumnSpec, read_products

    path = DATA / dataset / f"{split}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    texts = {
        p.line: p.text for b in read_products(path, ColumnSpec(text_columns=("title",))) for p in b
    }
    rows = [(r.id, texts[i + 2], r.category) for i, r in enumerate(frame.itertuples())]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def automation(datasets: list[str], presets: list[str]) -> list[dict]:
    from taxonomist.routing import Routing
    from taxonomist.routing import automation as automated
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import train_model

    out = []
    for dataset in datasets:
        _, train_texts, train_paths = read_split(dataset, "train")
        _, test_texts, test_paths = read_split(dataset, "test")
        tax = from_labels(train_paths + test_paths, name=dataset)
        y = [tax.by_path(p).id for p in train_paths]
        gold = [tax.by_path(p).id for p in test_paths]
        for preset in presets:
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                trained = train_model(train_texts, y, tax, Path(tmp) / "m", preset=preset)
                train_s = time.perf_counter() - started
                model = trained.model
                preds = model.predict(test_texts)
                best = [p.best for p in preds]
                pred_ids = [c.category_id for c in best]
                conf = np.array([c.confidence for c in best])
                routing = model.routing
                assert routing is not None
                rate, precision = automated(routing, pred_ids, conf, gold)
                glob = Routing(routing.precision_target, {}, routing.default)
                g_rate, g_precision = automated(glob, pred_ids, conf, gold)
                row = {
                    "dataset": dataset,
                    "preset": preset,
                    "test_rows": len(gold),
                    "accuracy": float(np.mean([p == g for p, g in zip(pred_ids, gold)])),
                    "automation_rate": rate,
                    "automated_precision": precision,
                    "valid_automation_rate": routing.automation_rate,
                    "global_threshold_automation_rate": g_rate,
                    "global_threshold_precision": g_precision,
                    "per_category_thresholds": sum(
                        1 for v in routing.thresholds.values() if v is not None
                    ),
                    "categories_never_automated": sum(
                        1 for v in routing.thresholds.values() if v is None
                    ),
                    "train_seconds": round(train_s, 1),
                }
                print(json.dumps(row), file=sys.stderr, flush=True)
                out.append(row)
    return out


def simulate(dataset: str, answers: int, order: str, seed: int, workdir: Path) -> dict:
    """One store, one queue, N answers in `order` ('queue', 'random' from the
    whole pool, or 'random-in-queue'), one retrain."""
    from taxonomist.errors import TaxonomyError
    from taxonomist.persistence import read_taxonomy
    from taxonomist.review import Filters, ReviewStore
    from taxonomist.review.loop import queue_file, retrain
    from taxonomist.service import train_file
    from taxonomist.store import ModelStore

    ids, texts, paths = read_split(dataset, "train")
    _, t_texts, t_paths = read_split(dataset, "test")
    shuffle = list(range(len(ids)))
    random.Random(seed).shuffle(shuffle)  # the same halves for both orders
    half = len(ids) // 2
    first, second = shuffle[:half], shuffle[half:]

    def write(rows: list[int], path: Path, labelled: bool = True) -> Path:
        frame = pd.DataFrame({"id": [ids[i] for i in rows], "title": [texts[i] for i in rows]})
        if labelled:
            frame["category"] = [paths[i] for i in rows]
        frame.to_csv(path, index=False)
        return path

    started = time.perf_counter()
    first_store = workdir / "store-first"
    if not first_store.exists():  # version 1 and its holdout are the same for both orders
        train_file(
            write(first, workdir / "first.csv"), preset="fast", store=first_store, name="products"
        )
    store_dir = workdir / f"store-{order}"
    shutil.copytree(first_store, store_dir)
    store = ModelStore(store_dir)
    v1 = store.current_version("products")
    db = store_dir / "review.sqlite"
    queued = queue_file(write(second, workdir / "pool.csv", False), store_dir, "products", db)
    tax = read_taxonomy(store.current("products"))
    gold = {ids[i]: paths[i] for i in second}
    rng = random.Random(seed + 1)
    corrected = answered = 0
    with ReviewStore(db, tax) as reviews:
        items = reviews.list_items(Filters(), limit=max(queued, 1))
        if order == "queue":
            chosen = items[:answers]
        elif order == "random-in-queue":
            chosen = rng.sample(items, min(answers, len(items)))
        else:  # "random": N products of the whole pool, queued or not (the usual baseline)
            chosen = _pool_sample(reviews, store, second, ids, texts, answers, rng, items)
        for item in chosen:
            try:
                truth = tax.by_path(gold[item["product_id"]]).id
            except TaxonomyError:
                continue  # a category the first half never saw: the reviewer skips it
            action = "accept" if truth == item["category_id"] else "correct"
            reviews.decide(item["id"], "simulated", action, truth)
            corrected += action == "correct"
            answered += 1
    report = retrain(store_dir, "products", db)
    v1_acc = _test_accuracy(store.path("products", v1), t_texts, t_paths)
    cand_acc = _test_accuracy(store.path("products", report.candidate), t_texts, t_paths)
    return {
        "dataset": dataset,
        "order": order,
        "answers": answered,
        "corrections": corrected,
        "queued": queued,
        "pool": len(second),
        "promoted": report.promoted,
        "reasons": report.reasons,
        "v1_test_accuracy": v1_acc,
        "candidate_test_accuracy": cand_acc,
        "gain": cand_acc - v1_acc,
        "holdout": report.holdout,
        "reviewed_check": report.reviewed_check,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _pool_sample(reviews, store, pool, ids, texts, answers, rng, items) -> list[dict]:
    """N products drawn from the whole pool; those the queue did not hold are classified
    by the current version and added to the queue (reason `random_sample`) so that the
    reviewer answers them the same way."""
    from taxonomist.classifier import load_classifier
    from taxonomist.review import Filters
    from taxonomist.review.intake import suggestions
    from taxonomist.review.queue import QueueEntry

    picked = rng.sample(pool, min(answers, len(pool)))
    queued = {item["product_id"]: item for item in items}
    missing = [i for i in picked if ids[i] not in queued]
    clf = load_classifier(store.current("products"))
    preds = clf.predict([{"id": ids[i], "title": texts[i]} for i in missing], top_k=5)
    version = store.current_version("products")
    entries = [
        QueueEntry(ids[i], suggestions(p), version, reason="random_sample", title=texts[i],
                   text=texts[i], model_name="products")
        for i, p in zip(missing, preds)
    ]  # fmt: skip
    reviews.enqueue(entries)
    everything = reviews.list_items(Filters(), limit=len(items) + len(entries) + 1)
    by_id = {item["product_id"]: item for item in everything}
    return [by_id[ids[i]] for i in picked]


def _test_accuracy(model_dir: Path, texts: list[str], paths: list[str]) -> float:
    from taxonomist.models import load_model

    model = load_model(model_dir)
    preds = model.predict(texts)
    return float(np.mean([p.best.path_str == path for p, path in zip(preds, paths)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["automation", "reviewer"])
    parser.add_argument("--datasets", default="pricerunner,fashion")
    parser.add_argument("--presets", default="fast,balanced")
    parser.add_argument("--answers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"benchmark data not found at {DATA}")
    datasets = [d for d in args.datasets.split(",") if d]
    RESULTS.mkdir(exist_ok=True)
    if args.part == "automation":
        rows = automation(datasets, [p for p in args.presets.split(",") if p])
        print(
            "| dataset | preset | test accuracy | automation rate (per-category thresholds) "
            "| precision | automation rate (one global threshold, peer) | precision |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['dataset']} | {r['preset']} | {r['accuracy']:.4f} | "
                f"{r['automation_rate']:.3f} | {r['automated_precision']:.4f} | "
                f"{r['global_threshold_automation_rate']:.3f} | "
                f"{r['global_threshold_precision']:.4f} |"
            )
    else:
        rows = []
        for dataset in datasets:
            with tempfile.TemporaryDirectory() as tmp:
                for order in ("queue", "random", "random-in-queue"):
                    row = simulate(dataset, args.answers, order, args.seed, Path(tmp))
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
        print(
            "| dataset | answered | order | corrections | v1 test acc | candidate test acc "
            "| gain | promoted |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['dataset']} | {r['answers']} | {r['order']} | {r['corrections']} | "
                f"{r['v1_test_accuracy']:.4f} | {r['candidate_test_accuracy']:.4f} | "
                f"{r['gain']:+.4f} | {r['promoted']} |"
            )
    out = args.out or RESULTS / f"review_loop-{args.part}.json"
    settings = {**vars(args), "out": str(out)}
    out.write_text(json.dumps({"args": settings, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
