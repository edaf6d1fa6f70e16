"""Where spreading starts: the pool's teacher distributions as they are, or with the titles
whose named category the members agree with taken as certain (`selftrain.anchor_agreed_names`).

Usage: .venv/bin/python benchmarks/name_anchors.py [--datasets pricerunner,fashion]
       [--shots 10] [--seeds 13,14,15,16,17] [--encoder pricerunner=use,fashion=minilm-int8]
       [--out FILE]
Per seed the labelled rows are drawn as in `few_labels.py`, and the training split's other
rows split (`fewshot_candidates.development_split`) into a development fifth, scored, and the
pool, unlabelled. The teacher is `fewshot` fitted on the labels alone (its members' mix
chosen out of fold, as self-training pseudo-labels with it). Each way of starting the
spread labels the whole pool (spreading 0.8 over the pool's TF-IDF neighbour graph, as
`fewshot` does), and a student (the linear member: TF-IDF SVM on the labels plus every
spread label, weighted by its confidence to the fourth power) is scored on the development
rows. Ways compared:
- spread: the teacher's distributions (what `fewshot` did before the thirteenth session);
- agreed names: rows whose title names exactly one category, the teacher's pick, set
  certain first (what it does now);
- every named row: rows whose title names exactly one category moved half-way to it,
  whatever the teacher says (dropped: fashion's titles often name a wrong category).
This measures the pseudo-labels and one student, not `fewshot`'s whole choice among
candidates (`fewshot_candidates.py` does that). The test split is never read.
Writes benchmarks/results/name_anchors-<datasets>-<shots>.json (or `--out`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_labels import sample_rows  # noqa: E402
from fewshot_candidates import development_split, training_split  # noqa: E402
from supervised import RESULTS, benchmark_args, benchmark_parser  # noqa: E402


def every_named_row(probs: np.ndarray, named: np.ndarray) -> np.ndarray:
    """The dropped start: every row whose title names exactly one category moved half-way
    to it, whatever the members say."""
    out = probs.copy()
    one = named.sum(1) == 1
    out[one] = 0.5 * out[one] + 0.5 * named[one]
    return out


def run(dataset: str, shots: int, seed: int, encoder: str) -> dict:
    from taxonomist.models import model_class
    from taxonomist.models.selftrain import agreed_names, anchor_agreed_names, pooled_logp
    from taxonomist.neighbours import neighbour_graph, spread
    from taxonomist.taxonomy import Taxonomy

    train = training_split(dataset)
    taxonomy = Taxonomy.from_paths([p.split(" > ") for p in sorted(set(train.category))])
    labelled = sample_rows(train, shots, seed)
    dev_rows, pool_rows = development_split(len(train), labelled, seed)
    cls = model_class("fewshot")
    model = cls(taxonomy, cls.config_class.from_dict({"encoder": encoder, "other_encoders": []}))
    model.fit(train.title.iloc[labelled].tolist(), train.category.iloc[labelled].tolist())
    index = {c: i for i, c in enumerate(model.labels)}
    texts = model.prepare(train.title.iloc[labelled].tolist())
    y = np.array([index[c] for c in train.category.iloc[labelled]])
    # the pool as `fewshot` takes it: repeated titles once (the first row's label scores it)
    gold_of: dict[str, str] = {}
    for text, label in zip(
        model.prepare(train.title.iloc[pool_rows].tolist()), train.category.iloc[pool_rows]
    ):
        gold_of.setdefault(text, label)
    pool = [t for t in gold_of if t]
    pool_gold = np.array([index[gold_of[t]] for t in pool])
    dev_texts = model.prepare(train.title.iloc[dev_rows].tolist())
    dev_gold = np.array([index[c] for c in train.category.iloc[dev_rows]])
    scores = model._member_scores(pool, model.embed(pool))
    probs = np.exp(pooled_logp(scores, model.member_temperatures, model.weights))
    features = model._tfidf_features(min_df=2)
    x = features.fit_transform(list(texts) + pool)
    x_labelled, x_pool, x_dev = x[: len(texts)], x[len(texts) :], features.transform(dev_texts)
    graph = neighbour_graph(x_pool, model.config.pool_neighbours)
    named = model._name_anchors(scores)
    starts = {"spread": probs}
    if named is not None:
        starts["agreed names"] = anchor_agreed_names(probs, named)
        starts["every named row"] = every_named_row(probs, named)
    row = {
        "dataset": dataset, "shots": shots, "seed": seed, "encoder": model.encoder.name,
        "pool": len(pool), "development_rows": len(dev_rows),
        "weights_labels_only": [round(float(w), 2) for w in model.weights],
    }  # fmt: skip
    if named is not None:
        one = named.sum(1) == 1
        agreed = agreed_names(probs, named)

        def share(mask) -> float:
            return round(float(np.mean(mask)), 4)

        row["pool_naming_one"] = share(one)
        row["names_right_there"] = share(named[one].argmax(1) == pool_gold[one])
        row["teacher_right_there"] = share(probs[one].argmax(1) == pool_gold[one])
        row["pool_agreed"] = share(agreed)
        row["agreed_right"] = share(named[agreed].argmax(1) == pool_gold[agreed])
    for name, start in starts.items():
        smoothed = spread(graph, start, model.config.pool_smoothing[0])
        pred, confidence = smoothed.argmax(1), smoothed.max(1)
        coef, intercept = model._fit_svc_with_pseudo_labels(x_labelled, y, x_pool, pred, confidence)
        student = np.asarray(x_dev @ coef.T) + intercept
        row[name] = {
            "pool_accuracy": round(float((pred == pool_gold).mean()), 4),
            "student_dev_accuracy": round(float((student.argmax(1) == dev_gold).mean()), 4),
        }
    return row


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seeds", default="13,14,15,16,17")
    parser.add_argument("--encoder", default="pricerunner=use,fashion=minilm-int8")
    parser.add_argument("--out", default="")
    args = benchmark_args(parser)
    if args is None:
        return 0
    encoders = dict(pair.split("=") for pair in args.encoder.split(","))
    rows = []
    for dataset in args.datasets.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            start = time.perf_counter()
            row = run(dataset, args.shots, seed, encoders.get(dataset, "minilm-int8"))
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else (
        RESULTS / f"name_anchors-{args.datasets.replace(',', '-')}-{args.shots}.json"
    )  # fmt: skip
    out.write_text(json.dumps({"rows": rows}, indent=1), encoding="utf-8")
    ways = ["spread", "agreed names", "every named row"]
    print("| dataset | seed | encoder | " + " | ".join(ways) + " |")
    print("|---|---|---|" + "---|" * len(ways))
    for r in rows:
        cells = [
            f"{r[w]['pool_accuracy']:.4f} / {r[w]['student_dev_accuracy']:.4f}" if w in r else "—"
            for w in ways
        ]
        print(f"| {r['dataset']} | {r['seed']} | {r['encoder']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
