"""Explanations: does deleting the top-attributed words hurt the prediction more than
deleting random words, and what does an explanation cost?

Usage: .venv/bin/python benchmarks/explain.py [--datasets pricerunner] [--presets fast,balanced]
       [--products 500] [--limit N] [--model DIR --out FILE]
Trains each preset on the training split (first N rows with --limit) as `train` does, then
on `--products` test products (seeded sample) explains the top prediction and measures the
predicted category's probability after deleting (a) the 3 words with the largest
attribution, (b) 3 random words of the same title (titles of 3 words or fewer lose all but
one word in both cases). Reports the mean drops and ms per explanation (explanations of the
batch, nearest training products included, divided by the batch size). Writes
benchmarks/results/explain.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised import RESULTS, benchmark_args, benchmark_parser, read_splits  # noqa: E402


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner")
    parser.add_argument("--presets", default="fast,balanced")
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="explain this trained model (of the one dataset and preset given) instead of "
        "training one",
    )
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    args = benchmark_args(parser)
    if args is None:
        return 0
    from taxonomist.analysis.explain import Explainer
    from taxonomist.models import load_model
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import train_model

    workdir = Path(tempfile.mkdtemp(prefix="taxonomist-explain-"))
    results = []
    for dataset in args.datasets.split(","):
        train, test = read_splits(dataset, limit=args.limit)
        tax = from_labels(train.category)
        rng = np.random.default_rng(args.seed)
        sample = rng.choice(len(test), min(args.products, len(test)), replace=False)
        titles = [test.text.iloc[i] for i in sample]
        for preset in args.presets.split(","):
            start = time.perf_counter()
            out = args.model or workdir / f"{dataset}-{preset}"
            if args.model is None:
                train_model(
                    train.text.tolist(), [tax.by_path(c).id for c in train.category], tax, out,
                    preset=preset, ids=train["id"].astype(str).tolist(),
                )  # fmt: skip
            train_s = time.perf_counter() - start
            model = load_model(out)
            explainer = Explainer(model, out)
            explainer.explain(titles[:1])  # one-time costs: vocabularies, encoder load
            start = time.perf_counter()
            explanations = explainer.explain(titles)
            ms = (time.perf_counter() - start) * 1000 / len(titles)
            variants, kept = [], []
            for exp, title in zip(explanations, titles):
                words = title.split()
                k = min(3, max(len(words) - 1, 0))
                top = {w.position for w in exp.words[:k]}
                rand = set(rng.choice(len(words), k, replace=False).tolist()) if k else set()
                for cut in (top, rand):
                    variants.append(" ".join(w for i, w in enumerate(words) if i not in cut))
                kept.append(model.labels.index(exp.category))
            base = np.array([e.probability for e in explanations])
            proba = model.predict_proba(variants)
            cols = np.repeat(kept, 2)
            after = proba[np.arange(len(variants)), cols].reshape(-1, 2)
            row = {
                "dataset": dataset,
                "preset": preset,
                "method": explanations[0].method,
                "products": len(titles),
                "train_rows": len(train),
                "train_s": round(train_s, 1),
                "mean_drop_top3": round(float((base - after[:, 0]).mean()), 4),
                "mean_drop_random3": round(float((base - after[:, 1]).mean()), 4),
                "top3_drop_larger_share": round(float((after[:, 0] < after[:, 1]).mean()), 4),
                "ms_per_explanation": round(ms, 2),
                "example": explanations[0].as_dict(),
            }
            results.append(row)
            RESULTS.mkdir(exist_ok=True)
            name = "explain.json" if not args.limit else f"explain-{args.limit}.json"
            text = json.dumps(results, indent=2, ensure_ascii=False)
            (args.out or RESULTS / name).write_text(text)
            print(json.dumps({k: v for k, v in row.items() if k != "example"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
