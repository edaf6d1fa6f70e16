"""Which multilingual encoder the Chinese `head` should use: E5-small vs USE-multilingual,
chosen out of fold on zh-retail's development rows, never on the test cut.

Usage: .venv/bin/python benchmarks/chinese_encoders.py [--limit 3000] [--folds 5]
The rows are the development part of `benchmarks/chinese.py --limit N` (its fixed 20% test
cut by group of identical titles, seed 2026, is left out entirely). On them, same folds for
every method (grouped, stratified: `crossval.cross_val_proba`): the `linear` member as
training plans it for Chinese, and a `head` as `balanced` configures it on each encoder. Reports
out-of-fold errors and accuracy, the paired difference between the two heads (McNemar's exact
test on the rows one gets right and the other wrong), and each encoder's titles/s on the same
256 uncached titles. Writes benchmarks/results/chinese_encoders[-N].json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chinese import encoder_speed, load_split  # noqa: E402
from supervised import DATA, RESULTS  # noqa: E402

ENCODERS = ("e5", "use")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if not (DATA / "zh-retail" / "train.csv").exists():
        print(f"skipped: zh-retail not found under {DATA}")
        return 0
    from scipy.stats import binomtest

    from taxonomist.crossval import cross_val_proba
    from taxonomist.languages import plan_for
    from taxonomist.taxonomy import Taxonomy
    from taxonomist.training import resolve_kind

    dev, _test_cut_never_read = load_split(args.limit)
    texts, labels = dev.title.tolist(), dev.category.tolist()
    taxonomy = Taxonomy.from_paths([[c] for c in sorted(set(labels))])
    ids = [taxonomy.by_path(c).id for c in labels]
    plan = plan_for(texts)
    _, preset = resolve_kind("balanced", None, {}, plan)
    member = {kind: dict(cfg) for kind, cfg in preset.members}
    methods = {"linear": ("linear", member["linear"])}
    for name in ENCODERS:
        methods[f"head on {name}"] = ("head", {**member["head"], "encoder": name})
    results: dict = {"rows": len(texts), "folds": args.folds, "methods": {}}
    right: dict[str, np.ndarray] = {}
    for name, (kind, config) in methods.items():
        start = time.perf_counter()
        oof = cross_val_proba(kind, config, texts, ids, args.folds, taxonomy=taxonomy)
        y = np.array([oof.labels.index(c) for c in ids])
        right[name] = oof.proba.argmax(1) == y
        results["methods"][name] = {
            "config": config,
            "oof_errors": int((~right[name]).sum()),
            "oof_accuracy": round(float(right[name].mean()), 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(json.dumps({name: results["methods"][name]}, ensure_ascii=False), flush=True)
    a, b = right["head on e5"], right["head on use"]
    only_e5, only_use = int((a & ~b).sum()), int((b & ~a).sum())
    results["e5_vs_use"] = {
        "only_e5_right": only_e5,
        "only_use_right": only_use,
        "p_value": float(binomtest(only_e5, only_e5 + only_use, 0.5).pvalue)
        if only_e5 + only_use
        else 1.0,
    }
    print(json.dumps(results["e5_vs_use"]), flush=True)
    results["speed"] = encoder_speed(list(ENCODERS), texts[-256:])
    out = RESULTS / f"chinese_encoders-{args.limit}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
