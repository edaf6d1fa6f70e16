"""Active learning: `suggest-labels` picks vs margin-only and random picks, same run.

Usage: .venv/bin/python benchmarks/active.py [--datasets pricerunner,fashion]
       [--seeds 13,14,15] [--rounds 5] [--batch 200] [--start 0.01]
       [--limit N] [--test-limit N]
The training split is the unlabelled pool. Each seed labels a random 1% of it, trains the
`fast` model (linear) on the labelled rows, then for `rounds` rounds picks `batch` more from
the rest of the pool, reveals their true labels, retrains, and scores test accuracy:
- suggest: `analysis.active.suggest` (per-level margin x greedy k-centre, near-copies of
  labelled products skipped);
- margin: the same uncertainty, most uncertain first, no diversity, no skipping;
- random: uniform picks.
The labelled-row index the suggester skips near-copies of is built from the rows labelled so
far. "labels to reach random's final accuracy" interpolates nothing: it is the first round
whose accuracy reaches random's last. Writes benchmarks/results/active.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised import RESULTS, benchmark_args, benchmark_parser, read_splits  # noqa: E402


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--seeds", default="13,14,15")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--start", type=float, default=0.01)
    parser.add_argument("--limit", type=int, default=0, help="pool: first N training rows")
    parser.add_argument("--test-limit", type=int, default=0, help="first N test rows")
    args = benchmark_args(parser)
    if args is None:
        return 0
    from taxonomist.analysis.active import NEAR_DUPLICATE, suggest
    from taxonomist.analysis.neighbours import TrainingIndex
    from taxonomist.models.linear import LinearModel
    from taxonomist.taxonomy_loaders import from_labels

    results = []
    for dataset in args.datasets.split(","):
        train, test = read_splits(dataset, limit=args.limit, test_limit=args.test_limit)
        tax = from_labels(list(train.category) + list(test.category))
        pool = train.text.tolist()
        pool_labels = [tax.by_path(c).id for c in train.category]
        test_texts = test.text.tolist()
        test_y = np.array([tax.by_path(c).id for c in test.category])
        ids = [str(i) for i in range(len(pool))]
        for seed in [int(s) for s in args.seeds.split(",")]:
            rng = np.random.default_rng(seed)
            start = rng.choice(len(pool), int(round(args.start * len(pool))), replace=False)
            row: dict = {"dataset": dataset, "seed": seed, "start_labels": len(start)}
            for strategy in ("suggest", "margin", "random"):
                labelled = set(int(i) for i in start)
                curve, seconds = [], 0.0
                pick_rng = np.random.default_rng(seed + 1000)
                for round_ in range(args.rounds + 1):
                    rows = sorted(labelled)
                    model = LinearModel(tax)
                    model.fit([pool[i] for i in rows], [pool_labels[i] for i in rows])
                    pred = np.array(model.labels)[model.predict_proba(test_texts).argmax(1)]
                    curve.append(
                        {"labels": len(rows), "accuracy": round(float((pred == test_y).mean()), 4)}
                    )
                    if round_ == args.rounds:
                        break
                    mask = np.ones(len(pool), dtype=bool)
                    mask[rows] = False
                    rest = np.flatnonzero(mask)
                    t0 = time.perf_counter()
                    if strategy == "random":
                        picks = pick_rng.choice(rest, args.batch, replace=False).tolist()
                    else:
                        index = (
                            TrainingIndex.build([ids[i] for i in rows], [pool[i] for i in rows],
                                                [pool_labels[i] for i in rows])
                            if strategy == "suggest" else None
                        )  # fmt: skip
                        chosen = suggest(
                            model, [pool[i] for i in rest], [ids[i] for i in rest], args.batch,
                            labelled=index, diversity=strategy == "suggest",
                        )  # fmt: skip
                        picks = [int(s.id) for s in chosen]
                    seconds += time.perf_counter() - t0
                    labelled.update(picks)
                row[strategy] = {"curve": curve, "pick_seconds": round(seconds, 1)}
            target = row["random"]["curve"][-1]["accuracy"]
            for strategy in ("suggest", "margin", "random"):
                reached = [c["labels"] for c in row[strategy]["curve"] if c["accuracy"] >= target]
                row[strategy]["labels_to_random_final"] = reached[0] if reached else None
            row["near_duplicate_threshold"] = NEAR_DUPLICATE
            results.append(row)
            RESULTS.mkdir(exist_ok=True)
            name = "active.json" if not args.limit else f"active-{args.limit}.json"
            (RESULTS / name).write_text(json.dumps(results, indent=2))
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
