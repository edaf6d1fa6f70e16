"""Ensemble selection: the old 10%-split weights against out-of-fold selection, beside `fast`
and the TF-IDF + LinearSVC peer, same splits, same run.

Usage: .venv/bin/python benchmarks/selection.py [--datasets pricerunner,fashion]
       [--seeds 13,14,15] [--balanced-seeds 13] [--limit N]
For each seed (it moves the validation split, the folds and every initialisation):
- SVC: TF-IDF word 1-2 + char 2-5, LinearSVC(C=0.5) (benchmarks/supervised.py's peer);
- fast: the `fast` preset as `train` trains it (split, fit, refit on all rows);
- balanced-old: the balanced ensemble with weights on the 10% validation split (folds=0);
- balanced-new: the same members, composition and weights chosen out of fold (folds=5).
Validation and folds only choose; the test split only scores. "beyond noise" compares
balanced-new with fast on the same test rows (McNemar's exact test on the rows one gets
right and the other wrong). Writes benchmarks/results/selection.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised import DATA, RESULTS, read_split, svc_fit_predict  # noqa: E402


def mcnemar(right_a: np.ndarray, right_b: np.ndarray) -> dict:
    """Exact two-sided McNemar test: does b err on different rows than a by more than chance?"""
    from scipy.stats import binomtest

    only_a = int((right_a & ~right_b).sum())
    only_b = int((right_b & ~right_a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_fast_right": only_a, "only_balanced_right": only_b, "p_value": float(p)}


def fit_balanced(tax, texts, labels, seed, folds, out_dir):
    """`balanced` as `train` trains it (validation split, fit, refit on all rows, saved), with
    `folds` 0 (the old 10%-split weights) or 5 (out-of-fold selection, the default)."""
    from taxonomist.training import train_model

    start, cpu = time.perf_counter(), time.process_time()
    model = train_model(
        texts, labels, tax, out_dir, preset="balanced", seed=seed,
        overrides={"seed": seed, "folds": folds},
    ).model  # fmt: skip
    # CPU seconds (all threads) say what the wall time would be on an idle machine
    return model, time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="pricerunner,fashion")
    parser.add_argument("--seeds", default="13,14,15")
    parser.add_argument("--balanced-seeds", default="13")
    parser.add_argument("--limit", type=int, default=0, help="first N training rows only")
    parser.add_argument(
        "--methods",
        default="balanced_old,balanced_new",
        help="which balanced fits to run on --balanced-seeds (the old split weights and/or "
        "the out-of-fold selection)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the balanced model directories here"
    )
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: development data not found at {DATA}")
        return 0
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import train_model

    workdir = Path(tempfile.mkdtemp(prefix="taxonomist-selection-"))
    keep = args.keep or workdir
    seeds = [int(s) for s in args.seeds.split(",")]
    balanced_seeds = {int(s) for s in args.balanced_seeds.split(",") if s}
    results = []
    out = args.out or RESULTS / (
        "selection.json" if not args.limit else f"selection-{args.limit}.json"
    )
    methods = {m for m in args.methods.split(",") if m}
    for dataset in args.datasets.split(","):
        train = read_split(dataset, "train", ("title",))
        test = read_split(dataset, "test", ("title",))
        if args.limit:
            # a sample, not the first rows: a file may be sorted by category
            train = train.sample(n=min(args.limit, len(train)), random_state=0)
        tax = from_labels(train.category)
        texts = train.text.tolist()
        labels = [tax.by_path(c).id for c in train.category]
        gold = test.category.to_numpy()

        def errors_of(model, test=test, tax=tax, gold=gold) -> tuple[int, np.ndarray]:
            proba = model.predict_proba(test.text.tolist())
            pred = np.array([tax.get(model.labels[j]).path_str for j in proba.argmax(1)])
            right = pred == gold
            return int((~right).sum()), right

        svc_pred, svc_s, _ = svc_fit_predict(train.text, train.category, test.text)
        svc_errors = int((np.asarray(svc_pred) != gold).sum())
        for seed in seeds:
            row: dict = {"dataset": dataset, "seed": seed, "train_rows": len(texts)}
            row["svc"] = {"errors": svc_errors, "train_s": round(svc_s, 1)}
            start = time.perf_counter()
            fast = train_model(
                texts, labels, tax, workdir / f"{dataset}-fast-{seed}", preset="fast", seed=seed,
                overrides={"seed": seed},
            ).model  # fmt: skip
            fast_errors, fast_right = errors_of(fast)
            row["fast"] = {"errors": fast_errors, "train_s": round(time.perf_counter() - start, 1)}
            print(json.dumps({"svc": row["svc"], "fast": row["fast"]}), flush=True)
            if seed in balanced_seeds:
                for name, folds in (("balanced_old", 0), ("balanced_new", 5)):
                    if name not in methods:
                        continue
                    model, secs, cpu_s = fit_balanced(
                        tax, texts, labels, seed, folds, keep / f"{dataset}-{name}-{seed}"
                    )
                    errors, right = errors_of(model)
                    row[name] = {
                        "errors": errors,
                        "train_s": round(secs, 1),
                        "train_cpu_s": round(cpu_s, 1),
                        "members": [m.kind for m in model.members],
                        "weights": [round(float(w), 3) for w in model.weights],
                        "vs_fast": mcnemar(fast_right, right),
                    }
                    if model.selection:
                        row[name]["candidates"] = model.selection["candidates"]
                    row[name]["errors_vs_svc"] = round(errors / svc_errors, 3)
                    print(json.dumps({name: row[name]}), flush=True)  # a slow run shows progress
            for name in ("fast", "balanced_old", "balanced_new"):
                if name in row:
                    row[name]["errors_vs_svc"] = round(row[name]["errors"] / svc_errors, 3)
            results.append(row)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2))
            print(json.dumps(row, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
