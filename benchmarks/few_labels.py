"""Few-label learning curve: zero-shot, then 5/10/20/50 labelled products per category.

Usage: .venv/bin/python benchmarks/few_labels.py [--datasets pricerunner,fashion,zh-retail]
       [--shots 0,5,10,20,50] [--test-limit 2000] [--zh-limit 3000] [--seed 13]
       [--no-unlabelled] [--out FILE]
At each point the same sampled labels train `fewshot` (category-name prototypes + examples,
TF-IDF + SVM, and the category names a title spells out, mixed by cross-validation on those
labels) and the peer, TF-IDF (word 1-2 + char_wb 2-5) +
LinearSVC; and `fewshot` again with the rest of the training split, its labels removed, as
the unlabelled pool it may self-train on (a partly labelled catalogue; whether and how much
is chosen by cross-validation on the labelled rows, never on the test rows).
At 0 labels, zero-shot (`taxonomist.zeroshot`, the label set built from the
training labels, so categories are known by their names only) stands alone. The full-data
reference is `fast` (TF-IDF + linear SVM) and the peer trained on every training row, same
run. Test rows: a random sample (seed 0) of `--test-limit` rows of the test split; zh-retail
uses the test cut of benchmarks/chinese.py over its first `--zh-limit` rows. Encoders: MiniLM
int8 for English, E5-small for Chinese (what the language-aware presets choose).
Writes benchmarks/results/few_labels-<datasets>.json (or `--out`) and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chinese import load_split  # noqa: E402
from supervised import (  # noqa: E402
    DATA,
    RESULTS,
    benchmark_args,
    benchmark_parser,
    svc_fit_predict,
)


def splits(dataset: str, test_limit: int, zh_limit: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if dataset == "zh-retail":
        train, test = load_split(zh_limit)
    else:
        read = lambda split: pd.read_csv(  # noqa: E731
            DATA / dataset / f"{split}.csv", dtype=str, keep_default_na=False
        )
        train, test = read("train"), read("test")
    if len(test) > test_limit:
        # a random sample, not the first rows: pricerunner's test file is sorted by category,
        # and its first 1,500 rows held a few easy categories (docs/benchmarks.md)
        test = test.sample(n=test_limit, random_state=0)
    return train, test.reset_index(drop=True)


def sample_rows(train: pd.DataFrame, shots: int, seed: int) -> list[int]:
    """Positions of `shots` rows per category (all of a smaller one), drawn with the seed."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for rows in train.groupby("category").indices.values():
        chosen.extend(rng.choice(rows, min(shots, len(rows)), replace=False).tolist())
    return sorted(chosen)


def sample(train: pd.DataFrame, shots: int, seed: int) -> pd.DataFrame:
    """`shots` rows per category (all of a smaller one), drawn with the seed."""
    return train.iloc[sample_rows(train, shots, seed)].reset_index(drop=True)


def accuracy(pred, gold) -> float:
    return round(float(np.mean(np.asarray(pred) == np.asarray(gold))), 4)


def main() -> int:
    from taxonomist.encoders import EmbeddingCache, EncoderSet, build_cached_encoder
    from taxonomist.languages import CHINESE_FEWSHOT
    from taxonomist.models import model_class
    from taxonomist.taxonomy import Taxonomy
    from taxonomist.zeroshot import ZeroShotClassifier

    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion,zh-retail")
    parser.add_argument("--shots", default="0,5,10,20,50")
    parser.add_argument("--test-limit", type=int, default=2000)
    parser.add_argument("--zh-limit", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-full", action="store_true")
    parser.add_argument("--priors", default="", help="fewshot's prior grid, e.g. 0.5,1,2,4,8,16")
    parser.add_argument("--out", default="", help="result file (default: from the datasets)")
    parser.add_argument(
        "--no-unlabelled", action="store_true", help="skip fewshot + the unlabelled pool"
    )
    args = benchmark_args(parser)
    if args is None:
        return 0
    results = []
    for dataset in args.datasets.split(","):
        train, test = splits(dataset, args.test_limit, args.zh_limit)
        paths = sorted(set(train.category) | set(test.category))
        taxonomy = Taxonomy.from_paths([p.split(" > ") for p in paths])
        chinese = dataset == "zh-retail"
        encoder_name = "e5" if chinese else "minilm-int8"
        encoder = build_cached_encoder(encoder_name, cache=EmbeddingCache())
        overrides: dict = {"encoder": encoder_name}
        if args.priors:
            overrides["priors"] = tuple(float(p) for p in args.priors.split(","))
        if chinese:  # as the language plan sets a Chinese catalogue's `fewshot`
            overrides["cjk_char_ngrams"] = (1, 3)
            overrides.update(CHINESE_FEWSHOT)
        gold = test.category.tolist()
        texts = test.title.tolist()
        print(f"{dataset}: {len(train)} train rows, {len(test)} test rows", flush=True)
        if not args.no_full:
            start = time.perf_counter()
            pred, _, _ = svc_fit_predict(train.title, train.category, test.title)
            results.append(
                {"dataset": dataset, "shots": "all", "method": "TF-IDF + LinearSVC (peer)",
                 "accuracy": accuracy(pred, gold), "seconds": round(time.perf_counter() - start)}
            )  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
        for shots in [int(s) for s in args.shots.split(",")]:
            start = time.perf_counter()
            if shots == 0:
                zeroshot = ZeroShotClassifier(taxonomy, EncoderSet({}, encoder))
                zeroshot = zeroshot.adapt(texts)  # a copy: adapt leaves its classifier as it was
                pred = [" > ".join(p.best.path) for p in zeroshot.predict(texts)]
                seconds = round(time.perf_counter() - start)
                results.append(
                    {"dataset": dataset, "shots": 0, "method": f"zero-shot ({encoder.name})",
                     "accuracy": accuracy(pred, gold), "seconds": seconds}
                )  # fmt: skip
                print(json.dumps(results[-1]), flush=True)
                continue
            labelled_rows = sample_rows(train, shots, args.seed)
            labelled = train.iloc[labelled_rows].reset_index(drop=True)
            pred, _, _ = svc_fit_predict(labelled.title, labelled.category, test.title)
            results.append(
                {"dataset": dataset, "shots": shots, "method": "TF-IDF + LinearSVC (peer)",
                 "accuracy": accuracy(pred, gold), "labels": len(labelled)}
            )  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
            cls = model_class("fewshot")
            model = cls(taxonomy, cls.config_class.from_dict(overrides))
            start = time.perf_counter()
            model.fit(labelled.title.tolist(), labelled.category.tolist())
            fit_s = time.perf_counter() - start
            pred = [" > ".join(p.best.path) for p in model.predict(texts)]
            history = model.report.history[0]
            results.append(
                {"dataset": dataset, "shots": shots, "method": "taxonomist fewshot",
                 "accuracy": accuracy(pred, gold), "labels": len(labelled),
                 "train_s": round(fit_s, 1), "prior": history["prior"],
                 "weight_prototypes": history["weight_prototypes"],
                 "weight_names": history.get("weight_names", 0.0),
                 "cv_accuracy": round(history["cv_accuracy"], 4)}
            )  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
            if args.no_unlabelled:
                continue
            # the unlabelled pool: every other training row, its label dropped
            rest = np.setdiff1d(np.arange(len(train)), labelled_rows)
            pool = train.title.iloc[rest].tolist()
            model = cls(taxonomy, cls.config_class.from_dict(overrides))
            start = time.perf_counter()
            model.fit(labelled.title.tolist(), labelled.category.tolist(), unlabelled=pool)
            fit_s = time.perf_counter() - start
            pred = [" > ".join(p.best.path) for p in model.predict(texts)]
            history = model.report.history[0]
            chosen = model.self_training or {}
            results.append(
                {"dataset": dataset, "shots": shots, "method": "taxonomist fewshot + unlabelled",
                 "accuracy": accuracy(pred, gold), "labels": len(labelled),
                 "unlabelled": chosen.get("unlabelled_rows"), "train_s": round(fit_s, 1),
                 "share": chosen.get("share"), "pseudo_labels": chosen.get("pseudo_labels"),
                 "pseudo_labels_shifted": chosen.get("pseudo_labels_shifted"),
                 # the weights the model predicts with (the history's are the labels-only
                 # mix's; results written before the eighth session's end hold those here)
                 "weights": [round(float(w), 2) for w in model.weights],
                 "members": list(model.members),
                 "cv_accuracy": round(history["cv_accuracy_self_trained"], 4),
                 "cv_candidates": chosen.get("candidates"),
                 "encoder_choice": chosen.get("encoder_choice")}
            )  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
        if not args.no_full:
            cls = model_class("linear")
            config = {"cjk_char_ngrams": (1, 3), "C": 2.0} if chinese else {}
            model = cls(taxonomy, cls.config_class.from_dict(config))
            model.fit(train.title.tolist(), train.category.tolist())
            pred = [" > ".join(p.best.path) for p in model.predict(texts)]
            results.append(
                {"dataset": dataset, "shots": "all", "method": "taxonomist fast (full data)",
                 "accuracy": accuracy(pred, gold)}
            )  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
        RESULTS.mkdir(exist_ok=True)
        tag = f"-priors-{args.priors.replace(',', '-')}" if args.priors else ""
        out = (
            Path(args.out)
            if args.out
            else RESULTS / f"few_labels-{args.datasets.replace(',', '-')}{tag}.json"
        )
        out.write_text(json.dumps({"load_average": os.getloadavg(), "rows": results}, indent=2))
    print("| data | labels/category | method | accuracy |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {r['shots']} | {r['method']} | {r['accuracy']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
