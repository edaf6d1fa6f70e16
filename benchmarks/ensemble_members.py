"""What each member of the `balanced` ensemble adds: every subset of its members, pooled.

Usage: .venv/bin/python benchmarks/ensemble_members.py [--datasets pricerunner,fashion]
       [--preset balanced]

The preset's members are trained once, as `train` trains them: on 90% of train with a grouped
validation split that calibrates them and learns the pooling weights, then refitted on all of
train. Each subset of members gets its own weights, learned on that validation split the same
way (`ensemble.fit_weights`), and is scored on the test split beside TF-IDF + LinearSVC from
the same run. Writes benchmarks/results/ensemble_members.json and prints a Markdown table.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time

import numpy as np
from supervised import RESULTS, benchmark_args, benchmark_parser, read_splits, svc_peer


def member_subsets(dataset: str, preset: str) -> list[dict]:
    from taxonomist.calibration import log_softmax
    from taxonomist.models import model_class
    from taxonomist.models.ensemble import fit_weights
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import cut_validation, resolve_kind

    train, test = read_splits(dataset)
    svc = svc_peer(train, test)
    taxonomy = from_labels([*train.category, *test.category])
    texts = train.text.tolist()
    labels = [taxonomy.by_path(c).id for c in train.category]
    fit_texts, fit_labels, valid_texts, valid_labels = cut_validation(texts, labels)
    kind, config = resolve_kind(preset, None, {})
    ensemble = model_class(kind)(taxonomy, config)
    start = time.perf_counter()
    ensemble.fit(fit_texts, fit_labels, valid_texts, valid_labels)
    members = ensemble.members
    index = {cid: i for i, cid in enumerate(ensemble.labels)}
    valid_y = np.array([index[c] for c in valid_labels])
    valid_logp = [log_softmax(m._logits(m.prepare(valid_texts)), m.temperature) for m in members]
    ensemble.refit_full(texts, labels)
    fit_s = time.perf_counter() - start
    test_texts = test.text.tolist()
    test_y = np.array([index.get(taxonomy.by_path(c).id, -1) for c in test.category])
    test_logp = [log_softmax(m._logits(m.prepare(test_texts)), m.temperature) for m in members]
    names = [f"{m.kind}({getattr(m.config, 'encoder', '')})".replace("()", "") for m in members]
    rows = [{**svc, "dataset": dataset}]
    for size in range(1, len(members) + 1):
        for subset in itertools.combinations(range(len(members)), size):
            weights = (
                fit_weights([valid_logp[i] for i in subset], valid_y, config.grid_step)
                if size > 1
                else np.ones(1)
            )
            pooled = sum(w * test_logp[i] for w, i in zip(weights, subset))
            valid_pooled = sum(w * valid_logp[i] for w, i in zip(weights, subset))
            errors = int((pooled.argmax(1) != test_y).sum())
            rows.append(
                {
                    "dataset": dataset,
                    "method": " + ".join(names[i] for i in subset),
                    "weights": [round(float(w), 2) for w in weights],
                    "valid_errors": int((valid_pooled.argmax(1) != valid_y).sum()),
                    "errors": errors,
                    "accuracy": float(1 - errors / len(test_y)),
                    "errors_vs_svc": round(errors / max(svc["errors"], 1), 3),
                }
            )
    print(f"{dataset}: members trained and refitted in {fit_s:.0f} s", flush=True)
    return rows


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--preset", default="balanced")
    args = benchmark_args(parser)
    if args is None:
        return 0
    os.environ.setdefault("TAXONOMIST_CACHE_DIR", tempfile.mkdtemp(prefix="taxonomist-bench-"))
    results = []
    for dataset in args.datasets.split(","):
        results.extend(member_subsets(dataset, args.preset))
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "ensemble_members.json").write_text(json.dumps(results, indent=2))
    print("| data | members | weights | valid errors | test errors | errors vs SVC |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['dataset']} | {r['method']} | {r.get('weights', '')} | "
            f"{r.get('valid_errors', '')} | {r['errors']} | {r.get('errors_vs_svc', 1.0)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
