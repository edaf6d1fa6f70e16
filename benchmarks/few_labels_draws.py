"""How much the few-label figure depends on which products were labelled: `fewshot` + the
unlabelled pool at one point of the curve, over several draws of the labelled rows.

Usage: .venv/bin/python benchmarks/few_labels_draws.py DATASET FULL_DATA_ACCURACY RESULT...
Each RESULT is a `few_labels.py` output (one per `--seed`, e.g. `--datasets pricerunner
--shots 10 --test-limit 100000 --no-full --seed 14`); FULL_DATA_ACCURACY is `fast` on every
training row, from a run with the full-data reference (it does not depend on the draw).
Prints each draw and the mean, its standard deviation and standard error, and the gap to
full data in points. One draw is one sample of a noisy quantity: SetFit reports its few-shot
figures as means over draws for this reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

METHOD = "taxonomist fewshot + unlabelled"


def draws(dataset: str, paths: list[Path]) -> list[tuple[str, float]]:
    out = []
    for path in paths:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
        hits = [r for r in rows if r["dataset"] == dataset and r["method"] == METHOD]
        if len(hits) != 1:
            raise SystemExit(
                f"{path}: expected one '{METHOD}' row for {dataset}, found {len(hits)}"
            )
        out.append((path.name, float(hits[0]["accuracy"])))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__)
        return 2
    dataset, full = argv[0], float(argv[1])
    found = draws(dataset, [Path(p) for p in argv[2:]])
    for name, accuracy in found:
        print(f"{dataset} {name}: {accuracy:.4f} (gap {100 * (full - accuracy):.2f} points)")
    values = np.array([a for _, a in found])
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    se = sd / np.sqrt(len(values))
    print(
        f"{dataset}: {len(values)} draws, mean {values.mean():.4f}, sd {sd:.4f}, se {se:.4f}; "
        f"gap to full data ({full:.4f}) {100 * (full - values.mean()):.2f} "
        f"± {100 * se:.2f} points"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
