"""Fine-tuned MiniLM on its own and pooled with the `linear` kind, against TF-IDF + LinearSVC.

Usage: .venv/bin/python benchmarks/finetune.py [--dataset fashion] [--epochs 3] [--lr 1e-4]
       [--base minilm|DIR] [--device cpu|cuda] [--patience 1]

Both models train on the same 90% of train; the grouped validation split (as `train` cuts it)
drives early stopping, calibration and the pooling weights. Fine-tuning is not refitted on
all of train (as `train` does for it), so neither is the linear member here. Writes
benchmarks/results/finetune-DATASET.json (finetune-DATASET-DEVICE.json off the CPU). Takes
~20 minutes on 2 cores for fashion.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np
from supervised import RESULTS, benchmark_args, benchmark_parser, read_splits, svc_peer


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--dataset", default="fashion")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--patience", type=int, default=1)
    args = benchmark_args(parser)
    if args is None:
        return 0
    os.environ.setdefault("TAXONOMIST_CACHE_DIR", tempfile.mkdtemp(prefix="taxonomist-bench-"))
    from taxonomist.calibration import log_softmax
    from taxonomist.models import model_class
    from taxonomist.models.ensemble import EnsembleConfig, fit_weights
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import cut_validation

    train, test = read_splits(args.dataset)
    rows = [svc_peer(train, test)]
    taxonomy = from_labels([*train.category, *test.category])
    labels = [taxonomy.by_path(c).id for c in train.category]
    fit_texts, fit_labels, valid_texts, valid_labels = cut_validation(train.text.tolist(), labels)
    members = {
        "linear": {},
        f"finetune ({args.base}, {args.epochs} epochs, lr {args.lr:g}, {args.device})": {
            "base": args.base,
            "epochs": args.epochs,
            "lr": args.lr,
            "patience": args.patience,
        },
    }
    logp_valid, logp_test = [], []
    for name, config in members.items():
        cls = model_class(name.split()[0])
        model = cls(taxonomy, cls.config_class.from_dict(config))
        model.device = args.device
        start = time.perf_counter()
        report = model.fit(fit_texts, fit_labels, valid_texts, valid_labels)
        fit_s = time.perf_counter() - start
        if not logp_valid:  # both kinds order their classes as the taxonomy does
            index = {cid: i for i, cid in enumerate(model.labels)}
            valid_y = np.array([index[c] for c in valid_labels])
            test_y = np.array([index.get(taxonomy.by_path(c).id, -1) for c in test.category])
        assert list(index) == model.labels
        logp_valid.append(log_softmax(model._logits(valid_texts), model.temperature))
        start = time.perf_counter()
        logp_test.append(log_softmax(model._logits(test.text.tolist()), model.temperature))
        errors = int((logp_test[-1].argmax(1) != test_y).sum())
        rows.append(
            {
                "method": name,
                "errors": errors,
                "train_s": round(fit_s, 1),
                "items_per_s": round(len(test) / (time.perf_counter() - start), 1),
                "history": report.history,
            }
        )
    weights = fit_weights(logp_valid, valid_y, EnsembleConfig().grid_step)
    pooled = sum(w * lp for w, lp in zip(weights, logp_test))
    rows.append(
        {
            "method": "linear + finetune, pooled",
            "weights": [float(w) for w in weights],
            "errors": int((pooled.argmax(1) != test_y).sum()),
        }
    )
    for row in rows:
        row["errors_vs_svc"] = round(row["errors"] / max(rows[0]["errors"], 1), 3)
        print(row["method"], row["errors"], row["errors_vs_svc"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.device == "cpu" else f"-{args.device.replace(':', '')}"
    (RESULTS / f"finetune-{args.dataset}{suffix}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
