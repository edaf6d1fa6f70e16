"""How well `fewshot` chooses among its self-training candidates, on development rows.

Usage: .venv/bin/python benchmarks/fewshot_candidates.py [--datasets pricerunner,fashion]
       [--shots 10] [--seeds 13] [--encoders minilm-int8,use] [--out FILE]
With unlabelled products, `fewshot` scores every candidate (a share of pseudo-labels, or
spread labels, each from the plain or the class-shifted teacher, times a shift of the final
scores) out of fold on the labelled rows and keeps one, then one encoder. This script asks
what that choice leaves on the table. Per seed, the labelled rows are drawn as in
`few_labels.py`; the training split's other rows are split (seed 1000 + seed) into a
development fifth, scored, and the pool, unlabelled. Each encoder is fitted once alone
(`other_encoders` empty); then every candidate is refitted (`FewShotModel.use_candidate`)
and scored on the development rows. Rules compared, each applied per encoder and then
across encoders as `fewshot.choose_encoder` does (the lowest score; until the twelfth
session, only among encoders that made no more out-of-fold errors than the first):
- shipped: cross-validation's choice (no more out-of-fold errors than the labels alone, then
  the lowest out-of-fold Brier score; the log-loss until the eleventh session);
- accuracy: the highest (mix-weighted) out-of-fold accuracy, ties to the lower log-loss;
- log-loss: the shipped rule with the out-of-fold log-loss in place of the Brier score (the
  rule before; result files of the eleventh session call it "shipped", and the Brier rule
  "brier");
- best on development rows: the ceiling a perfect choice would reach (encoder included).
The test split is never read. Development rows share product clusters with the pool (the
split is by group only between the train and test files), which flatters whatever reads the
pool; the figures compare choices, they do not forecast test accuracy.
Writes benchmarks/results/fewshot_candidates-<datasets>-<shots>.json (or `--out`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chinese import load_split  # noqa: E402
from few_labels import sample_rows  # noqa: E402
from supervised import DATA, RESULTS, benchmark_args, benchmark_parser  # noqa: E402


def training_split(dataset: str):
    """The training rows only (zh-retail: the training cut of `chinese.py`'s split)."""
    import pandas as pd

    if dataset == "zh-retail":
        return load_split(3000)[0]
    path = DATA / dataset / "train.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def development_split(n_rows: int, labelled: list[int], seed: int) -> tuple[np.ndarray, ...]:
    """(development rows, pool rows): a fifth of the rows not labelled, and the rest."""
    rest = np.random.default_rng(1000 + seed).permutation(np.setdiff1d(np.arange(n_rows), labelled))
    return np.sort(rest[: len(rest) // 5]), np.sort(rest[len(rest) // 5 :])


def score_candidates(model, texts, labels, dev_texts, dev_labels) -> dict:
    """The fitted model's choice and every candidate, each with its development accuracy."""
    index = {cid: i for i, cid in enumerate(model.labels)}
    gold = np.array([index[c] for c in dev_labels])

    def dev_accuracy() -> float:
        return round(float((model._logits(dev_texts).argmax(1) == gold).mean()), 4)

    history = model.report.history[0]
    chosen = {
        "cv_accuracy": history["cv_accuracy_self_trained"],
        "cv_log_loss": history["cv_log_loss_self_trained"],
        "cv_brier": history["cv_brier_self_trained"],
        "dev_accuracy": dev_accuracy(),
        **{k: model.self_training[k] for k in ("share", "smoothing", "prior_shift")},
        "pseudo_labels_shifted": model.self_training["pseudo_labels_shifted"],
    }
    candidates = []
    for candidate in model.self_training["candidates"]:
        model.use_candidate(candidate, texts, labels)
        candidates.append({**candidate, "dev_accuracy": dev_accuracy()})
    return {"chosen": chosen, "candidates": candidates}


def by_accuracy(candidates: list[dict]) -> dict:
    return max(candidates, key=lambda c: (c["cv_accuracy"], -c["cv_log_loss"]))


def by_log_loss(candidates: list[dict]) -> dict:
    """As the shipped rule (`selftrain.best_candidate`), the log-loss in place of the Brier
    score; keyed as `fewshot` keys them, so that ties break the same way."""
    from taxonomist.models.selftrain import best_candidate

    keyed = {
        (c["share"], c["smoothing"], float(c["pseudo_labels_shifted"]), c["prior_shift"]): c
        for c in candidates
    }
    return keyed[best_candidate(keyed, (0.0, 0.0, 0.0, 0.0), "cv_log_loss")]


def across_encoders(picks: dict[str, dict], score: str) -> str:
    from taxonomist.models.fewshot import choose_encoder

    return choose_encoder({name: {score: p[score]} for name, p in picks.items()}, score)


def main() -> int:
    from taxonomist.models import model_class
    from taxonomist.taxonomy import Taxonomy

    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seeds", default="13")
    parser.add_argument("--encoders", default="minilm-int8,use")
    parser.add_argument("--out", default="")
    args = benchmark_args(parser)
    if args is None:
        return 0
    encoders = args.encoders.split(",")
    rows = []
    for dataset in args.datasets.split(","):
        train = training_split(dataset)
        taxonomy = Taxonomy.from_paths([p.split(" > ") for p in sorted(set(train.category))])
        for seed in [int(s) for s in args.seeds.split(",")]:
            labelled = sample_rows(train, args.shots, seed)
            dev_rows, pool_rows = development_split(len(train), labelled, seed)
            texts = train.title.iloc[labelled].tolist()
            labels = train.category.iloc[labelled].tolist()
            dev_texts = train.title.iloc[dev_rows].tolist()
            dev_labels = train.category.iloc[dev_rows].tolist()
            pool = train.title.iloc[pool_rows].tolist()
            runs = {}
            for encoder in encoders:
                overrides: dict = {"encoder": encoder, "other_encoders": []}
                if dataset == "zh-retail":
                    overrides["cjk_char_ngrams"] = (1, 3)
                cls = model_class("fewshot")
                model = cls(taxonomy, cls.config_class.from_dict(overrides))
                start = time.perf_counter()
                model.fit(texts, labels, unlabelled=pool)
                fit_s = time.perf_counter() - start
                runs[encoder] = score_candidates(model, texts, labels, dev_texts, dev_labels)
                runs[encoder]["fit_s"] = round(fit_s, 1)
            rules = {  # the picks, and the score that chooses between encoders
                "shipped": ({e: r["chosen"] for e, r in runs.items()}, "cv_brier"),
                "accuracy": (
                    {e: by_accuracy(r["candidates"]) for e, r in runs.items()},
                    "cv_log_loss",
                ),
                "log_loss": (
                    {e: by_log_loss(r["candidates"]) for e, r in runs.items()},
                    "cv_log_loss",
                ),
            }
            row = {"dataset": dataset, "shots": args.shots, "seed": seed,
                   "development_rows": len(dev_rows), "pool": len(pool)}  # fmt: skip
            for rule, (picks, score) in rules.items():
                encoder = across_encoders(picks, score)
                row[rule] = {"encoder": encoder, "dev_accuracy": picks[encoder]["dev_accuracy"]}
            encoder, best = max(
                ((e, c) for e, r in runs.items() for c in r["candidates"]),
                key=lambda ec: ec[1]["dev_accuracy"],
            )
            row["best_on_development_rows"] = {
                "encoder": encoder,
                "dev_accuracy": best["dev_accuracy"],
                **{k: best[k] for k in ("share", "smoothing", "prior_shift")},
                "pseudo_labels_shifted": best["pseudo_labels_shifted"],
            }
            row["encoders"] = runs
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "encoders"}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else (
        RESULTS / f"fewshot_candidates-{args.datasets.replace(',', '-')}-{args.shots}.json"
    )  # fmt: skip
    out.write_text(json.dumps({"rows": rows}, indent=1), encoding="utf-8")
    print("| dataset | seed | shipped | accuracy rule | log-loss rule | best on development rows |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            f"{r[k]['dev_accuracy']:.4f} ({r[k]['encoder']})"
            for k in ("shipped", "accuracy", "log_loss", "best_on_development_rows")
        ]
        print(f"| {r['dataset']} | {r['seed']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
