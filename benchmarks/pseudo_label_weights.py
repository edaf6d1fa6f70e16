"""Pseudo-labels weighted by their confidence, or all alike: `fewshot` with a pool, scored on
training rows held out of the pool (development) and on test rows (scored only).

Usage: TAXONOMIST_BENCH_DATA=../shared/data .venv/bin/python benchmarks/pseudo_label_weights.py
       [--datasets pricerunner:use,fashion:minilm-int8] [--shots 10] [--powers 0,4]
The labelled rows are `few_labels.py`'s (same seed); the rest of the training split is
shuffled (seed 1), a fifth of it is held out with its labels (development rows: inductive,
unlike the pool's own hidden labels, which the self-trained SVM has seen as pseudo-labels)
and the rest, labels removed, is the pool. One encoder per run (`other_encoders` off) so
that only the weighting differs. Writes benchmarks/results/pseudo_label_weights.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_labels import sample_rows, splits  # noqa: E402
from fewshot_pool import accuracy  # noqa: E402
from supervised import RESULTS, benchmark_args, benchmark_parser  # noqa: E402


def main() -> int:
    from taxonomist.models import model_class
    from taxonomist.taxonomy import Taxonomy

    parser = benchmark_parser(__doc__, datasets="pricerunner:use,fashion:minilm-int8")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--powers", default="0,4")
    args = benchmark_args(parser)
    if args is None:
        return 0
    rows = []
    for spec in args.datasets.split(","):
        dataset, encoder = spec.split(":")
        train, test = splits(dataset, 2000, 3000)
        paths = sorted(set(train.category) | set(test.category))
        taxonomy = Taxonomy.from_paths([p.split(" > ") for p in paths])
        labelled_rows = sample_rows(train, args.shots, args.seed)
        labelled = train.iloc[labelled_rows].reset_index(drop=True)
        rest = train.iloc[np.setdiff1d(np.arange(len(train)), labelled_rows)]
        rest = rest.sample(frac=1, random_state=1)
        held_out, pool = rest.iloc[: len(rest) // 5], rest.iloc[len(rest) // 5 :]
        for power in [float(p) for p in args.powers.split(",")]:
            config = {"encoder": encoder, "other_encoders": [], "pseudo_label_power": power}
            if dataset == "zh-retail":
                config["cjk_char_ngrams"] = [1, 3]
            cls = model_class("fewshot")
            model = cls(taxonomy, cls.config_class.from_dict(config))
            start = time.perf_counter()
            model.fit(
                labelled.title.tolist(), labelled.category.tolist(), unlabelled=pool.title.tolist()
            )
            chosen = model.self_training
            row = {
                "dataset": dataset, "encoder": encoder, "shots": args.shots, "power": power,
                "pool_rows": len(pool), "held_out_rows": len(held_out),
                "held_out_accuracy": accuracy(model, held_out),
                "test_rows": len(test), "test_accuracy": accuracy(model, test),
                "share": chosen["share"], "smoothing": chosen["smoothing"],
                "weights": [round(float(w), 2) for w in model.weights],
                "fit_s": round(time.perf_counter() - start),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pseudo_label_weights.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
