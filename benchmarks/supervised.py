"""Supervised benchmark: presets vs TF-IDF + LinearSVC and frozen MiniLM + logistic regression,
same splits, same run.

Usage: .venv/bin/python benchmarks/supervised.py [--datasets pricerunner,fashion]
       [--presets fast,balanced,balanced:encoder=minilm] [--text-columns title]
A preset may carry `:key=value` overrides (as `train --encoder minilm` sets one), e.g. the
balanced preset with the float MiniLM instead of the int8 one. Every method, peers included,
reads the same text: the given columns joined as `train --text-columns` joins them.
Writes benchmarks/results/supervised.json (supervised-<columns>.json for columns other than
title) and prints a Markdown table. Throughput is measured
on the test titles with an empty embedding cache (so encoding is counted), batch 512, after
one warm-up title has loaded the model's encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# ../shared/data beside the checkout; TAXONOMIST_BENCH_DATA points elsewhere (a GPU machine
# gets a copy of the splits carried with the working tree)
DATA = Path(
    os.environ.get(
        "TAXONOMIST_BENCH_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
RESULTS = Path(__file__).resolve().parent / "results"


def peers(train: pd.DataFrame, test: pd.DataFrame) -> list[dict]:
    return [svc_peer(train, test), minilm_peer(train, test)]


def svc_peer(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    pred, fit_s, predict_s = svc_fit_predict(train.text, train.category, test.text)
    return _row("TF-IDF + LinearSVC(C=0.5) (peer)", test, pred, fit_s, predict_s)


def svc_fit_predict(train_texts, train_labels, test_texts) -> tuple[np.ndarray, float, float]:
    """TF-IDF (word 1-2 + char 2-5 grams, sublinear tf) + LinearSVC(C=0.5), as issue 3 sets.

    Returns the test predictions, seconds to fit and seconds to predict.
    """
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    x = hstack([word.fit_transform(train_texts), char.fit_transform(train_texts)]).tocsr()
    svc = LinearSVC(C=0.5).fit(x, train_labels)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = svc.predict(hstack([word.transform(test_texts), char.transform(test_texts)]).tocsr())
    return pred, fit_s, time.perf_counter() - start


def read_split(dataset: str, split: str, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """The split with a `text` column built by the package's own reader, so peers and
    presets see exactly the text `train`/`classify` would."""
    from taxonomist.data import ColumnSpec, read_products

    path = DATA / dataset / f"{split}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = ColumnSpec(text_columns=text_columns)
    texts = {p.line: p.text for batch in read_products(path, columns) for p in batch}
    if len(texts) != len(frame):
        raise SystemExit(f"{path}: {len(frame) - len(texts)} rows have no text in {text_columns}")
    # data lines start at 2 (line 1 is the header) and no field spans lines in these files
    frame["text"] = [texts[i + 2] for i in range(len(frame))]
    return frame


def read_splits(
    dataset: str,
    text_columns: tuple[str, ...] = ("title",),
    *,
    limit: int = 0,
    test_limit: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset's train and test splits as `read_split` reads them; `limit` and
    `test_limit` (0: every row) keep a seeded sample of that many rows (`sample_rows`)."""
    train = read_split(dataset, "train", text_columns)
    test = read_split(dataset, "test", text_columns)
    return sample_rows(train, limit), sample_rows(test, test_limit)


def sample_rows(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """`n` rows drawn with a fixed seed (0: the frame as it is). A sample, not the first
    rows: a file may be sorted by category."""
    return frame.sample(n=min(n, len(frame)), random_state=0) if n else frame


def benchmark_parser(
    description: str | None, *, datasets: str | None = None
) -> argparse.ArgumentParser:
    """A benchmark's command line; with `datasets`, a --datasets option (comma-separated
    names under DATA) with that default."""
    parser = argparse.ArgumentParser(description=description)
    if datasets is not None:
        parser.add_argument("--datasets", default=datasets)
    return parser


def benchmark_args(parser: argparse.ArgumentParser) -> argparse.Namespace | None:
    """The parsed command line, or None when the development data is absent (said so on
    stdout): the benchmark then skips, with exit status 0."""
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: development data not found at {DATA}")
        return None
    return args


def minilm_peer(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    from sklearn.linear_model import LogisticRegression

    from taxonomist.encoders import build_encoder

    encoder = build_encoder("minilm")
    start = time.perf_counter()
    lr = LogisticRegression(max_iter=2000, C=10.0).fit(
        encoder.encode(train.text.tolist(), batch_size=128), train.category
    )
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = lr.predict(encoder.encode(test.text.tolist(), batch_size=128))
    return _row(
        "frozen MiniLM + LogisticRegression (peer)", test, pred, fit_s, time.perf_counter() - start
    )


def _row(method: str, test: pd.DataFrame, pred, fit_s: float, predict_s: float) -> dict:
    from sklearn.metrics import f1_score

    gold = test.category.to_numpy()
    pred = np.asarray(pred)
    return {
        "method": method,
        "accuracy": float((pred == gold).mean()),
        "macro_f1": float(
            f1_score(gold, pred, average="macro", labels=sorted(set(gold)), zero_division=0)
        ),
        "errors": int((pred != gold).sum()),
        "train_s": round(fit_s, 1),
        "items_per_s": round(len(test) / predict_s, 1),
    }


def ours(
    dataset: str, spec: str, test: pd.DataFrame, workdir: Path, text_columns: tuple[str, ...]
) -> dict:
    from taxonomist.data import ColumnSpec
    from taxonomist.models import load_model
    from taxonomist.service import train_file

    preset, *pairs = spec.split(":")
    overrides = dict(pair.split("=", 1) for pair in pairs)
    start = time.perf_counter()
    outcome = train_file(
        DATA / dataset / "train.csv",
        workdir / f"{dataset}-{spec.replace(':', '-').replace('=', '-')}",
        preset=preset,
        columns=ColumnSpec(text_columns=text_columns),
        overrides=overrides,
    )
    fit_s = time.perf_counter() - start
    model = load_model(outcome.model_dir)
    os.environ["TAXONOMIST_CACHE_DIR"] = tempfile.mkdtemp()  # count encoding in throughput
    # one-time costs stay out of the rate: loading the encoder, and exporting the int8 one
    # (kept on disk per machine after the first time)
    model.predict(["warm-up product title"])
    texts = test.text.tolist()
    start = time.perf_counter()
    preds = []
    for i in range(0, len(texts), 512):
        preds.extend(model.predict(texts[i : i + 512]))
    predict_s = time.perf_counter() - start
    os.environ["TAXONOMIST_CACHE_DIR"] = str(workdir / "cache")
    pred = [" > ".join(p.best.path) for p in preds]
    row = _row(f"taxonomist preset={spec} ({outcome.kind})", test, pred, fit_s, predict_s)
    levels = {}
    gold_paths = [c.split(" > ") for c in test.category]
    for d in range(1, max(len(g) for g in gold_paths) + 1):
        levels[f"level_{d}_accuracy"] = float(
            np.mean([p.best.path[:d] == tuple(g[:d]) for p, g in zip(preds, gold_paths)])
        )
    row.update(levels)
    row["valid_accuracy"] = outcome.valid_metrics.get("accuracy")
    row["valid_ece"] = outcome.valid_metrics.get("ece")
    return row


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--presets", default="fast,balanced,balanced:encoder=minilm")
    parser.add_argument("--text-columns", default="title")
    args = benchmark_args(parser)
    if args is None:
        return 0
    text_columns = tuple(args.text_columns.split(","))
    out = (
        "supervised.json"
        if text_columns == ("title",)
        else f"supervised-{'-'.join(text_columns)}.json"
    )
    workdir = Path(tempfile.mkdtemp(prefix="taxonomist-bench-"))
    os.environ["TAXONOMIST_CACHE_DIR"] = str(workdir / "cache")
    results = []
    for dataset in args.datasets.split(","):
        train, test = read_splits(dataset, text_columns)
        rows = peers(train, test)
        for preset in args.presets.split(","):
            rows.append(ours(dataset, preset, test, workdir, text_columns))
        svc = rows[0]
        for row in rows:
            row["dataset"] = dataset
            row["text_columns"] = list(text_columns)
            row["errors_vs_svc"] = round(row["errors"] / max(svc["errors"], 1), 3)
            row["speed_vs_svc"] = round(row["items_per_s"] / svc["items_per_s"], 3)
        results.extend(rows)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / out).write_text(json.dumps(results, indent=2))
        print(json.dumps(rows, indent=1), flush=True)
    print("| data | method | acc | macro-F1 | errors vs SVC | train s | items/s | speed vs SVC |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['dataset']} | {r['method']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['errors_vs_svc']} | {r['train_s']} | {r['items_per_s']} | {r['speed_vs_svc']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
