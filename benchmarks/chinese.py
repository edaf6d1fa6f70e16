"""Chinese catalogue benchmark: presets vs TF-IDF + LinearSVC on zh-retail, same rows, same run.

Usage: .venv/bin/python benchmarks/chinese.py [--limit N] [--presets fast,balanced]
       [--encoders e5,use,minilm-int8]
zh-retail (`../shared/data/zh-retail/train.csv`, or TAXONOMIST_BENCH_DATA) has no licence
and only a development part, so this script cuts its own test part once: 20% of the rows by
group of identical titles, hash seed 2026 (`training.group_split`). Nothing is chosen on it:
the settings in `taxonomist.languages` were chosen on a validation split of the other 80%
(seed 7), and training cuts its own validation split from the 80% as usual. `--limit N` uses
the first N rows of the file (a smaller run on a loaded machine; the split is the same rule).
`--feature-study` first compares TF-IDF variants on that validation split (why `fast` lost).
`--encoders` also trains a `head` on each encoder (E5-small vs USE-multilingual) and times
each encoder on the same 256 titles. Writes benchmarks/results/chinese[-N].json and prints a
Markdown table.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised import DATA, RESULTS, svc_fit_predict  # noqa: E402

TEST_SEED = 2026


def load_split(limit: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(development train, test) of zh-retail: the test cut is fixed by the seed."""
    from taxonomist.training import group_split

    frame = pd.read_csv(DATA / "zh-retail" / "train.csv", dtype=str, keep_default_na=False)
    if limit:
        frame = frame.iloc[:limit]
    train_idx, test_idx = group_split(frame.title.tolist(), 0.2, seed=TEST_SEED)
    return frame.iloc[train_idx].reset_index(drop=True), frame.iloc[test_idx].reset_index(drop=True)


def row(method: str, gold: np.ndarray, pred, fit_s: float, predict_s: float) -> dict:
    from sklearn.metrics import f1_score

    pred = np.asarray(pred)
    return {
        "method": method,
        "accuracy": round(float((pred == gold).mean()), 4),
        "macro_f1": round(
            float(f1_score(gold, pred, average="macro", labels=sorted(set(gold)), zero_division=0)),
            4,
        ),
        "errors": int((pred != gold).sum()),
        "train_s": round(fit_s, 1),
        "items_per_s": round(len(gold) / max(predict_s, 1e-9), 1),
    }


def train_ours(train: pd.DataFrame, test: pd.DataFrame, workdir: Path, **kwargs) -> tuple:
    from taxonomist.models import load_model
    from taxonomist.taxonomy import Taxonomy
    from taxonomist.training import train_model

    taxonomy = Taxonomy.from_paths([[c] for c in sorted(set(train.category))])
    start = time.perf_counter()
    name = "-".join(f"{k}-{v}" for k, v in kwargs.items() if not isinstance(v, dict))
    trained = train_model(
        train.title.tolist(), train.category.tolist(), taxonomy, workdir / name, **kwargs
    )
    fit_s = time.perf_counter() - start
    model = load_model(trained.path)
    start = time.perf_counter()
    pred = [p.best.path[0] for p in model.predict(test.title.tolist())]
    manifest = json.loads((trained.path / "manifest.json").read_text("utf-8"))
    return pred, fit_s, time.perf_counter() - start, manifest


def feature_study(train: pd.DataFrame) -> list[dict]:
    """Why `fast` lost to a char SVC: features compared on a validation split of the
    development rows (20%, group split, seed 7), never on the test cut."""
    import re

    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from taxonomist.models.tfidf import TfidfFeatures
    from taxonomist.training import group_split

    fit_idx, valid_idx = group_split(train.title.tolist(), 0.2, seed=7)
    x, y = train.title.iloc[fit_idx].tolist(), train.category.iloc[fit_idx].to_numpy()
    vx, vy = train.title.iloc[valid_idx].tolist(), train.category.iloc[valid_idx].to_numpy()
    word_vocab = set(TfidfVectorizer().fit(x).vocabulary_)
    tokens = [t for s in vx for t in re.findall(r"(?u)\b\w\w+\b", s.lower())]
    out: list[dict] = [
        {
            "variant": "word tokens (peer's analyzer) on validation titles",
            "mean_token_chars": round(float(np.mean([len(t) for t in tokens])), 1),
            "share_seen_in_training": round(float(np.mean([t in word_vocab for t in tokens])), 3),
        }
    ]
    print(json.dumps(out[-1], ensure_ascii=False), flush=True)

    def tfidf(**kw):
        return TfidfVectorizer(sublinear_tf=True, **kw)

    variants = {
        "peer: word 1-2 + char_wb 2-5, C=0.5": (
            [tfidf(ngram_range=(1, 2)), tfidf(analyzer="char_wb", ngram_range=(2, 5))], 0.5
        ),
        "char_wb 2-5 only, C=0.5": ([tfidf(analyzer="char_wb", ngram_range=(2, 5))], 0.5),
        "char_wb 1-2 only, C=0.5": ([tfidf(analyzer="char_wb", ngram_range=(1, 2))], 0.5),
        "char_wb 1-3 only, C=0.5": ([tfidf(analyzer="char_wb", ngram_range=(1, 3))], 0.5),
        "char_wb 1-4 only, C=0.5": ([tfidf(analyzer="char_wb", ngram_range=(1, 4))], 0.5),
        "char 1-3 (across spaces), C=0.5": ([tfidf(analyzer="char", ngram_range=(1, 3))], 0.5),
    }  # fmt: skip
    for name, (vectorizers, c) in variants.items():
        start = time.perf_counter()
        fitted = hstack([v.fit_transform(x) for v in vectorizers]).tocsr()
        svc = LinearSVC(C=c).fit(fitted, y)
        pred = svc.predict(hstack([v.transform(vx) for v in vectorizers]).tocsr())
        out.append({"variant": name, "valid_errors": int((pred != vy).sum()),
                    "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
        print(json.dumps(out[-1]), flush=True)
    for c in (0.5, 1.0, 2.0):
        start = time.perf_counter()
        features = TfidfFeatures((1, 2), (2, 5), cjk_char_ngrams=(1, 3))
        svc = LinearSVC(C=c).fit(features.fit_transform(x), y)
        pred = svc.predict(features.transform(vx))
        out.append({"variant": f"taxonomist: non-CJK words 1-2 + CJK char 1-3, C={c}",
                    "valid_errors": int((pred != vy).sum()),
                    "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
        print(json.dumps(out[-1]), flush=True)
    return out


def encoder_speed(names: list[str], titles: list[str]) -> list[dict]:
    """Titles a second for each encoder on the same titles, uncached, after a warm-up."""
    from taxonomist.encoders import build_encoder

    out = []
    for name in names:
        encoder = build_encoder(name)
        encoder.encode(titles[:8])
        start = time.perf_counter()
        encoder.encode(titles, batch_size=64)
        seconds = time.perf_counter() - start
        out.append({"encoder": encoder.name, "titles_per_s": round(len(titles) / seconds, 1)})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--presets", default="fast,balanced")
    parser.add_argument("--encoders", default="")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--feature-study", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    args = parser.parse_args()
    if not (DATA / "zh-retail" / "train.csv").exists():
        print(f"skipped: zh-retail not found under {DATA}")
        return 0
    train, test = load_split(args.limit)
    print(f"zh-retail: {len(train)} development rows, {len(test)} test rows", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="taxonomist-zh-"))
    gold = test.category.to_numpy()
    rows = []
    study = feature_study(train) if args.feature_study else []
    if not args.no_peer:
        pred, fit_s, predict_s = svc_fit_predict(train.title, train.category, test.title)
        rows.append(
            row("TF-IDF (word 1-2 + char_wb 2-5) + LinearSVC (peer)", gold, pred, fit_s, predict_s)
        )
        print(json.dumps(rows[-1]), flush=True)
    for preset in filter(None, args.presets.split(",")):
        pred, fit_s, predict_s, manifest = train_ours(train, test, workdir, preset=preset)
        rows.append(row(f"taxonomist preset={preset}", gold, pred, fit_s, predict_s))
        rows[-1]["languages"] = manifest.get("languages")
        rows[-1]["config"] = manifest.get("config")
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    encoders = [e for e in args.encoders.split(",") if e]
    for name in encoders:
        pred, fit_s, predict_s, manifest = train_ours(
            train, test, workdir, kind="head", overrides={"encoder": name}
        )
        rows.append(row(f"head on {manifest.get('encoder')}", gold, pred, fit_s, predict_s))
        print(json.dumps(rows[-1]), flush=True)
    speeds = encoder_speed(encoders, test.title.tolist()[:256]) if encoders else []
    peer = next((r for r in rows if "(peer)" in r["method"]), None)
    for r in rows:
        if peer:
            r["errors_vs_svc"] = round(r["errors"] / max(peer["errors"], 1), 3)
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / (f"chinese-{args.limit}.json" if args.limit else "chinese.json")
    result = {
        "train_rows": len(train),
        "test_rows": len(test),
        "load_average": os.getloadavg(),
        "rows": rows,
        "encoder_speed": speeds,
        "feature_study": study,
    }
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("| method | acc | macro-F1 | errors | vs SVC | train s | items/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['errors']} | "
            f"{r.get('errors_vs_svc', '')} | {r['train_s']} | {r['items_per_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
