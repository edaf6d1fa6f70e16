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


def measured(
    cmd: list[str], deadline: float | None = None, progress: Path | None = None
) -> tuple[float, int, str, list[list[float]]]:
    """Wall seconds, peak RSS (bytes) of the process tree, the last output line, and a
    series of [seconds, RSS MB, rows done] every 10 s (rows from the job manifest at
    `progress`). Past `deadline` (seconds) the job is stopped and reported as partial."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = 0
    series: list[list[float]] = []
    stop = threading.Event()

    def rows_done() -> int:
        try:
            manifest = json.loads((progress / "_manifest.json").read_text())  # type: ignore[operator]
            return sum(p["rows"] for p in manifest["parts"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        last = 0.0
        while not stop.is_set():
            try:
                total = 0
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                peak = max(peak, total)
                now = time.perf_counter() - started
                if now - last >= 10:
                    series.append([round(now), round(total / 2**20), rows_done()])
                    last = now
                if deadline is not None and now > deadline:
                    for p in [*root.children(recursive=True), root]:
                        with contextlib.suppress(psutil.Error):
                            p.kill()
                    return
            except psutil.Error:
                pass
            stop.wait(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    stop.set()
    thread.join()
    seconds = time.perf_counter() - started
    if deadline is not None and seconds > deadline:
        return seconds, peak, f"stopped at the deadline after {rows_done()} rows", series
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed:\n{output[-2000:]}")
    last = [line for line in output.splitlines() if line.strip()][-1]
    return seconds, peak, last, series


def run(
    preset: str, engine: str, rows: int, models: dict[str, Path], deadline: float | None = None
) -> dict:
    import shutil

    model = models["balanced" if preset == "cascade" else preset]
    out = WORK / f"out-{preset}-{engine}-{rows}"
    if out.exists():
        shutil.rmtree(out)
    cmd = _cli(
        "classify", str(catalogue(rows)), "--model", str(model), "--out", str(out),
        "--format", "parquet", "--device", "cpu",
    )  # fmt: skip
    if preset == "cascade":
        cmd.append("--cascade")
    if engine == "ray":
        cmd += ["--engine", "ray", "--concurrency", "2", "--batch-size", "1024"]
    for attempt in range(5):  # a local Ray can time out starting on an overloaded machine
        try:
            seconds, peak, last, series = measured(cmd, deadline, out)
            break
        except RuntimeError as exc:
            if engine != "ray" or attempt == 4 or "could not start" not in str(exc):
                raise
            print(f"retrying: {str(exc)[-300:]}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
    partial = last.startswith("stopped at the deadline")
    done = series[-1][2] if partial and series else rows
    result = {
        "preset": preset,
        "engine": engine,
        "rows": rows,
        "complete": not partial,
        "rows_done": done,
        "seconds": round(seconds, 1),
        "items_per_s": round(done / seconds, 1),
        "peak_rss_mb": round(peak / 2**20),
        "output": last,
        "rss_mb_and_rows_every_10s": series,
    }
    print(
        json.dumps({k: v for k, v in result.items() if k != "rss_mb_and_rows_every_10s"}),
        flush=True,
    )
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
        started, cpu = time.perf_counter(), time.process_time()
        probs = model.predict_proba(texts)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        pred = [model.labels[i] for i in probs.argmax(1)]
        acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
        out["cascade" if cascade else "full"] = {
            "accuracy": round(acc, 5),
            "items_per_s": round(len(texts) / seconds, 1),
            "seconds": round(seconds, 1),
            # CPU seconds (all threads) per 1,000 items: what a core does, whatever the load
            "cpu_s_per_1k": round(1000 * cpu / len(texts), 2),
            **({"answered_cheaply": model.cascade_stats["cheap"]} if cascade else {}),
        }
    out["rows"] = len(texts)
    out["threshold"] = model.cascade_threshold
    out["speedup"] = round(out["cascade"]["items_per_s"] / out["full"]["items_per_s"], 2)
    out["accuracy_drop_points"] = round(
        100 * (out["full"]["accuracy"] - out["cascade"]["accuracy"]), 3
    )
    fast = load_model(models["fast"], "cpu") if "fast" in models else None
    if fast is not None:
        sample = [perturb(t, random.Random(i)) for i, t in enumerate(texts * 5)]
        cpu = time.process_time()
        fast.predict_proba(sample)
        out["fast_cpu_s_per_1k"] = round(1000 * (time.process_time() - cpu) / len(sample), 2)
    print(json.dumps({"accuracy": out}), flush=True)
    return out


COLD = """
import json, sys, time
t = time.perf_counter()
from taxonomist.models import load_model
m = load_model(sys.argv[1], "cpu", use_cache=False)
m.predict(["apple iphone 8 plus 64gb silver"])
# VmHWM, not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts from the high-water
# mark of the process that started it (this benchmark, after training), whatever it uses
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(json.dumps({"seconds": time.perf_counter() - t, "rss_mb": int(hwm) / 1024,
  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""


def export_cold_start(models: dict[str, Path], presets: list[str]) -> dict:
    out: dict = {}
    for preset in presets:
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
    parser.add_argument("--export-presets", default="fast,balanced")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--deadline", type=float, default=None, help="stop a run after this many seconds"
    )
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: development data not found at {DATA}")
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    runs = [r.split(":") for r in args.runs.split(",") if r]
    presets = {p for p, _, _ in runs} | ({"balanced"} if args.accuracy else set())
    models = {}
    exported = set(args.export_presets.split(",")) if args.export else set()
    if "fast" in presets | exported:
        models["fast"] = train("fast", args.train_rows)
    if presets & {"balanced", "cascade"} or args.accuracy or "balanced" in exported:
        models["balanced"] = train("balanced", args.balanced_train_rows)
    results: dict = {"machine": f"{os.cpu_count()} cores (shared)", "runs": []}
    if args.out and args.out.exists():
        results = json.loads(args.out.read_text())
    for preset, engine, rows in runs:
        results["runs"].append(run(preset, engine, int(rows), models, args.deadline))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    if args.accuracy:
        results["cascade"] = accuracy(models, args.test_rows)
    if args.export:
        results["export"] = export_cold_start(models, args.export_presets.split(","))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
