"""ONNX export of fusion models on fashion: exactness against the original, cold start, RSS.

Usage: .venv/bin/python benchmarks/export_fusion.py [--train 1500] [--test 400]
       [--presets balanced,best] [--no-cold]
Writes benchmarks/results/export_fusion.json and prints it.

For each fusion preset (`balanced`: late fusion of the TF-IDF text model and the
EfficientNet-Lite0 image head; `best`: late + the gated early network over float MiniLM and
EfficientNet features, stacked on the text model's probabilities) a model is trained on the
first `--train` rows of the fashion train split (every 5th validates), exported, and both
predict the first `--test` rows of the test split three times: with their photos, with the
photos hidden, and with the titles hidden. Reported: top-1 agreement and the largest
absolute probability difference. Then a fresh process per model loads it and classifies one
product with its photo (best of two runs; peak RSS of that process). Image features of the
original come from the embedding cache when present (they are the torch encoder's own);
the export has no cache and encodes every photo itself.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TAXONOMIST_BENCH_DATA", ROOT.parent / "shared" / "data")) / "fashion"
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "src"))


def _rows(split: str, limit: int) -> list[dict[str, str]]:
    with open(DATA / f"{split}.csv", encoding="utf-8") as handle:
        return [r for _, r in zip(range(limit), csv.DictReader(handle))]


COLD = """
import json, sys, time
t = time.perf_counter()
from taxonomist.items import Item
from taxonomist.models import load_model
m = load_model(sys.argv[1], "cpu", use_cache=False)
m.predict([Item(sys.argv[2], sys.argv[3])])
# VmHWM, not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts at the high-water
# mark of the process that forked it (this benchmark, gigabytes), whatever the child uses
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(json.dumps({"seconds": time.perf_counter() - t, "rss_mb": int(hwm) / 1024,
  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""


def cold_start(path: Path, title: str, image: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    runs = []
    for _ in range(2):  # the second run: files in the page cache
        done = subprocess.run(
            [sys.executable, "-c", COLD, str(path), title, image],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "cold_start_s": round(min(r["seconds"] for r in runs), 2),
        "peak_rss_mb": round(max(r["rss_mb"] for r in runs)),
        "imports_torch": runs[-1]["torch"],
        "imports_transformers": runs[-1]["transformers"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--presets", default="balanced,best")
    parser.add_argument("--no-cold", action="store_true")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"{DATA} not found; this benchmark needs the shared fashion data")
        return 1

    from taxonomist.export import export_model
    from taxonomist.items import Item
    from taxonomist.models import load_model, model_class
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import FUSION_PRESETS, Preset

    train_rows, test_rows = _rows("train", args.train), _rows("test", args.test)
    taxonomy = from_labels(r["category"] for r in train_rows + test_rows)

    def items(rows):
        return [Item(r["title"], str(DATA / r["image"])) for r in rows]

    train, test = items(train_rows), items(test_rows)
    labels = [taxonomy.by_path(r["category"]).id for r in train_rows]
    fit_idx = [i for i in range(len(train)) if i % 5]
    valid_idx = [i for i in range(len(train)) if not i % 5]
    probes = {
        "title+photo": test,
        "title only": [Item(it.text, None) for it in test],
        "photo only": [Item("", it.image) for it in test],
    }
    results: dict = {"train_rows": len(train), "test_rows": len(test), "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            config = FUSION_PRESETS[Preset.from_str(preset)]
            cls = model_class("fusion")
            model = cls(taxonomy, cls.config_class.from_dict(config))
            started = time.perf_counter()
            model.fit(
                [train[i] for i in fit_idx], [labels[i] for i in fit_idx],
                [train[i] for i in valid_idx], [labels[i] for i in valid_idx],
            )  # fmt: skip
            saved = model.save(Path(tmp) / preset)
            trained_s = time.perf_counter() - started
            started = time.perf_counter()
            exported = export_model(saved, Path(tmp) / f"{preset}-onnx")
            export_s = time.perf_counter() - started
            original, onnx = load_model(saved), load_model(exported)
            row: dict = {"config": config, "train_s": round(trained_s, 1),
                         "export_s": round(export_s, 1)}  # fmt: skip
            for name, probe in probes.items():
                pa, pb = original.predict_proba(probe), onnx.predict_proba(probe)
                row[name] = {
                    "top1_same": int((pa.argmax(1) == pb.argmax(1)).sum()),
                    "rows": len(probe),
                    "max_abs_prob_diff": float(np.abs(pa - pb).max()),
                }
            if not args.no_cold:
                sample = test[0]
                row["cold"] = {
                    "original": cold_start(saved, sample.text, sample.image),
                    "onnx": cold_start(exported, sample.text, sample.image),
                }
            results["presets"][preset] = row
            print(json.dumps({preset: row}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export_fusion.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
