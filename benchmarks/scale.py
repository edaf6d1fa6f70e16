"""Scale: resumable local batch jobs and the Ray engine on 10k-1M rows, the cascade, and the
ONNX export's cold start.

Rows are sampled from the PriceRunner and fashion train titles with small perturbations (a
word dropped, two swapped, a size or count appended), so nearly every row is a new string and
no cache can trivialise the work (batch jobs run with the embedding cache off anyway). Every
run is a fresh `taxonomist classify ... --format parquet` process; peak RSS is the largest sum
of RSS over that process and all its descendants (Ray's raylet, GCS and workers included),
sampled every 0.25 s.

    TAXONOMIST_BENCH_DATA=/path/to/shared/data nice -n 5 python benchmarks/scale.py \\
        --runs fast:local:10000,fast:ray:10000 --out benchmarks/results/scale.json

Runs are `preset:engine:rows` (preset fast, balanced, cascade = balanced --cascade; engine
local or ray with 2 workers). `--accuracy` also scores balanced with and without the cascade
on test rows in one process (cache off), and `--export` times the exported model's cold
start against the original's.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(
    os.environ.get("TAXONOMIST_BENCH_DATA", ROOT.parent / "shared" / "data")  # type: ignore[arg-type]
)
WORK = Path(
    os.environ.get("TAXONOMIST_BENCH_WORK", Path(tempfile.gettempdir()) / "taxonomist-scale")
)
SIZES = {"fashion": ["title", "gender", "baseColour"], "pricerunner": ["title"]}
EXTRA = ["xl", "m", "s", "128gb", "64 gb", "pack of 2", "2-pack", "black", "new", "2024", "uk"]


def _rows(dataset: str, split: str) -> list[dict[str, str]]:
    with open(DATA / dataset / f"{split}.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def labelled(split: str, per_dataset: int, seed: int = 13) -> list[tuple[str, str]]:
    """(title, category) from both datasets; the same label space for one model."""
    rng = random.Random(seed)
    out = []
    for dataset in ("pricerunner", "fashion"):
        rows = _rows(dataset, split)
        rng.shuffle(rows)
        out += [(r["title"], f"{dataset} > {r['category']}") for r in rows[:per_dataset]]
    rng.shuffle(out)
    return out


def perturb(title: str, rng: random.Random) -> str:
    words = title.split()
    for _ in range(rng.randint(1, 2)):
        op = rng.random()
        if op < 0.3 and len(words) > 3:
            del words[rng.randrange(len(words))]
        elif op < 0.6 and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            words.append(rng.choice(EXTRA) if rng.random() < 0.5 else str(rng.randint(1, 999)))
    return " ".join(words)


def catalogue(rows: int) -> Path:
    path = WORK / f"catalogue-{rows}.csv"
    if path.exists():
        return path
    titles = [t for t, _ in labelled("train", 30_000)]
    rng = random.Random(rows)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # two benchmark processes at once
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title"])
        for i in range(rows):
            writer.writerow([f"r{i}", perturb(rng.choice(titles), rng)])
    tmp.replace(path)
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from taxonomist.cli import main; main()", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TQDM_DISABLE": "1"}


def train(preset: str, per_dataset: int) -> Path:
    out = WORK / f"model-{preset}"
    if (out / "manifest.json").exists():
        return out
    data = WORK / f"train-{preset}.csv"
    with open(data, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "category"])
        for i, (title, label) in enumerate(labelled("train", per_dataset)):
            writer.writerow([i, title, label])
    started = time.perf_counter()
    subprocess.run(
        _cli("train", str(data), "--out", str(out), "--preset", preset, "--device", "cpu"),
        env=_env(),
        check=True,
    )
    print(f"trained {preset} on {2 * per_dataset} rows in {time.perf_counter() - started:.0f} s")
    return out


def measured(cmd: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) of the process tree, and the last output line."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                peak = max(peak, total)
            except psutil.Error:
                pass
            stop.wait(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    stop.set()
    thread.join()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed:\n{output[-2000:]}")
    last = [line for line in output.splitlines() if line.strip()][-1]
    return seconds, peak, last


def run(preset: str, engine: str, rows: int, models: dict[str, Path]) -> dict:
    model = models["balanced" if preset == "cascade" else preset]
    out = WORK / f"out-{preset}-{engine}-{rows}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    cmd = _cli(
        "classify", str(catalogue(rows)), "--model", str(model), "--out", str(out),
        "--format", "parquet", "--device", "cpu",
    )  # fmt: skip
    if preset == "cascade":
        cmd.append("--cascade")
    if engine == "ray":
        cmd += ["--engine", "ray", "--concurrency", "2", "--batch-size", "1024"]
    seconds, peak, last = measured(cmd)
    result = {
        "preset": preset,
        "engine": engine,
        "rows": rows,
        "seconds": round(seconds, 1),
        "items_per_s": round(rows / seconds, 1),
        "peak_rss_mb": round(peak / 2**20),
        "output": last,
    }
    print(json.dumps(result), flush=True)
    import shutil

    shutil.rmtree(out, ignore_errors=True)  # 1M rows of output: keep the disk free
    return result


def accuracy(models: dict[str, Path], per_dataset: int) -> dict:
    """Balanced with and without the cascade on test rows: accuracy and items/s, one process,
    no embedding cache (so the encoder really runs)."""
    sys.path.insert(0, str(ROOT / "src"))
    from taxonomist.models import load_model

    rows = labelled("test", per_dataset)
    texts = [t for t, _ in rows]
    model = load_model(models["balanced"], "cpu", use_cache=False)
    gold = []
    for _, label in rows:
        try:
            gold.append(model.taxonomy.by_path(label).id)
        except Exception:  # noqa: BLE001 - a test label never seen in training
            gold.append(None)
    out = {}
    for cascade in (False, True):
        model.cascade = cascade
        model.cascade_stats = {"cheap": 0, "encoded": 0}
        started = time.perf_counter()
        probs = model.predict_proba(texts)
        seconds = time.perf_counter() - started
        pred = [model.labels[i] for i in probs.argmax(1)]
        acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
        out["cascade" if cascade else "full"] = {
            "accuracy": round(acc, 5),
            "items_per_s": round(len(texts) / seconds, 1),
            "seconds": round(seconds, 1),
            **({"answered_cheaply": model.cascade_stats["cheap"]} if cascade else {}),
        }
    out["rows"] = len(texts)
    out["threshold"] = model.cascade_threshold
    out["speedup"] = round(out["cascade"]["items_per_s"] / out["full"]["items_per_s"], 2)
    out["accuracy_drop_points"] = round(
        100 * (out["full"]["accuracy"] - out["cascade"]["accuracy"]), 3
    )
    print(json.dumps({"accuracy": out}), flush=True)
    return out


COLD = """
import json, os, resource, sys, time
t = time.perf_counter()
from taxonomist.models import load_model
m = load_model(sys.argv[1], "cpu", use_cache=False)
m.predict(["apple iphone 8 plus 64gb silver"])
print(json.dumps({"seconds": time.perf_counter() - t,
  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""


def export_cold_start(models: dict[str, Path]) -> dict:
    out: dict = {}
    for preset in ("fast", "balanced"):
        exported = WORK / f"export-{preset}"
        if not (exported / "manifest.json").exists():
            subprocess.run(
                _cli("export", str(models[preset]), "--out", str(exported)), env=_env(), check=True
            )
        for label, path in (("original", models[preset]), ("onnx", exported)):
            runs = []
            for _ in range(2):  # the second run: files in the page cache
                done = subprocess.run(
                    [sys.executable, "-c", COLD, str(path)],
                    env=_env(), capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            out[f"{preset}-{label}"] = {
                "cold_start_s": round(min(r["seconds"] for r in runs), 2),
                "peak_rss_mb": round(max(r["rss_mb"] for r in runs)),
                "imports_torch": runs[-1]["torch"],
                "imports_transformers": runs[-1]["transformers"],
            }
    print(json.dumps({"export": out}), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="fast:local:10000,fast:ray:10000")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--export", action="store_true")
    parser.add_argument("--train-rows", type=int, default=10_000, help="fast: per dataset")
    parser.add_argument("--balanced-train-rows", type=int, default=3_000, help="per dataset")
    parser.add_argument("--test-rows", type=int, default=1_000, help="per dataset")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: development data not found at {DATA}")
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    runs = [r.split(":") for r in args.runs.split(",") if r]
    presets = {p for p, _, _ in runs} | ({"balanced"} if args.accuracy else set())
    models = {}
    if "fast" in presets or args.export:
        models["fast"] = train("fast", args.train_rows)
    if presets & {"balanced", "cascade"} or args.accuracy or args.export:
        models["balanced"] = train("balanced", args.balanced_train_rows)
    results: dict = {"machine": f"{os.cpu_count()} cores (shared)", "runs": []}
    if args.out and args.out.exists():
        results = json.loads(args.out.read_text())
    for preset, engine, rows in runs:
        results["runs"].append(run(preset, engine, int(rows), models))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    if args.accuracy:
        results["cascade"] = accuracy(models, args.test_rows)
    if args.export:
        results["export"] = export_cold_start(models)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
