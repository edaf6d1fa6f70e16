"""How --min-confidence trades coverage for accuracy on fashion (3 levels).

Usage: .venv/bin/python benchmarks/min_confidence.py [--preset fast]
Trains the preset on fashion/train, then for each threshold reports the share of test rows
kept at full depth (not flagged needs_review), the accuracy on those rows, and the accuracy of
every row's (possibly backed-off) path prefix. Writes benchmarks/results/min_confidence.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="fast")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: development data not found at {DATA}")
        return 0
    from taxonomist.data import ColumnSpec
    from taxonomist.models import load_model
    from taxonomist.service import train_file

    outcome = train_file(
        DATA / "fashion" / "train.csv",
        Path(tempfile.mkdtemp()) / "m",
        preset=args.preset,
        columns=ColumnSpec(text_columns=("title",)),
    )
    model = load_model(outcome.model_dir)
    test = pd.read_csv(DATA / "fashion" / "test.csv", dtype=str, keep_default_na=False)
    gold = [tuple(c.split(" > ")) for c in test.category]
    rows = []
    for threshold in THRESHOLDS:
        preds = model.predict(test.title.tolist(), min_confidence=threshold)
        full = [not p.needs_review for p in preds]
        correct_full = [p.best.path == g for p, g, f in zip(preds, gold, full) if f]
        prefix_ok = [
            bool(p.candidates) and g[: len(p.best.path)] == p.best.path for p, g in zip(preds, gold)
        ]
        rows.append(
            {
                "threshold": threshold,
                "full_depth_coverage": float(np.mean(full)),
                "accuracy_on_full_depth_rows": float(np.mean(correct_full))
                if correct_full
                else None,
                "backed_off_path_correct": float(np.mean(prefix_ok)),
                "abstained": float(np.mean([not p.candidates for p in preds])),
            }
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"min_confidence-{args.preset}.json").write_text(json.dumps(rows, indent=2))
    print(
        "| min-confidence | full-depth coverage | accuracy (full-depth rows) | backed-off path "
        "correct | no category |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        acc = r["accuracy_on_full_depth_rows"]
        print(
            f"| {r['threshold']} | {r['full_depth_coverage']:.4f} | "
            f"{acc:.4f} | {r['backed_off_path_correct']:.4f} | {r['abstained']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
