"""How `fewshot` weighs its self-trained members, judged on products the pool has no copy of.

Usage: .venv/bin/python benchmarks/mix_criterion.py [--datasets pricerunner,fashion]
       [--shots 10] [--seeds 13,14,15,16,17] [--criteria log_loss,brier] [--out FILE]
With unlabelled products, `fewshot` pools three members (labels-only prototypes, the
self-trained linear student, the names) with weights chosen out of fold on the labelled
rows: until the fourteenth session the lowest log-loss, now the lowest Brier score
(`FewShotConfig.mix_criterion`), among mixes that make no more out-of-fold errors than either
end of the grid. This script fits the default `fewshot` once per criterion and scores each on
two sets of the training split's rows, the test split never read:
- group development rows: whole product groups held out of the pool. The train file has no
  cluster ids, so a group is the rows joined by a shared title or a shared rare model-number
  token (letters and digits, five characters or more, in at most 30 titles), a stand-in for
  the group split between the train and test files. Groups holding a labelled row, or of over
  200 rows (chains through common tokens), stay in the pool. About a fifth of the rows.
  This is how new products meet the model; random development rows share clusters with the
  pool and flatter whatever reads it (`fewshot_candidates.py`).
- pool rows: a random 6,000 of the pool, scored on their hidden labels. This is the
  catalogue that trained the model classified by it.
Per seed the labelled rows are drawn as in `few_labels.py`.
Writes benchmarks/results/mix_criterion-<datasets>-<shots>.json (or `--out`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_labels import sample_rows  # noqa: E402
from fewshot_candidates import training_split  # noqa: E402
from supervised import RESULTS, benchmark_args, benchmark_parser  # noqa: E402

from taxonomist.product_groups import product_groups  # noqa: E402


def group_development_split(
    titles: list[str], labelled: list[int], seed: int, max_group: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """(development rows, pool rows): whole groups (`product_groups`) drawn until a fifth of
    the unlabelled rows; groups with a labelled row or over `max_group` rows are not drawn."""
    groups = product_groups(titles)
    ids, sizes = np.unique(groups, return_counts=True)
    size = dict(zip(ids.tolist(), sizes.tolist()))
    taken = set(groups[labelled].tolist())
    target = (len(titles) - len(labelled)) // 5
    chosen, rows = set(), 0
    for g in np.random.default_rng(2000 + seed).permutation(ids).tolist():
        if rows >= target:
            break
        if g in taken or size[g] > max_group:
            continue
        chosen.add(g)
        rows += size[g]
    development = np.isin(groups, list(chosen))
    return np.flatnonzero(development), np.setdiff1d(np.flatnonzero(~development), labelled)


def accuracy(model, titles: list[str], categories: list[str], rows: np.ndarray) -> float:
    """The fitted model's accuracy on `rows` (its own scores, no routing or abstention)."""
    index = {cid: i for i, cid in enumerate(model.labels)}
    chunk = model.prepare([titles[i] for i in rows])
    gold = np.array([index[categories[i]] for i in rows])
    return round(float((model._logits(chunk).argmax(1) == gold).mean()), 4)


def run(dataset: str, shots: int, seed: int, variants: dict[str, dict]) -> dict:
    from taxonomist.models import model_class
    from taxonomist.taxonomy import Taxonomy

    train = training_split(dataset)
    taxonomy = Taxonomy.from_paths([p.split(" > ") for p in sorted(set(train.category))])
    titles = train.title.tolist()
    labelled = sample_rows(train, shots, seed)
    dev_rows, pool_rows = group_development_split(titles, labelled, seed)
    pool_sample = np.random.default_rng(5).choice(pool_rows, min(6000, len(pool_rows)), False)
    texts = [titles[i] for i in labelled]
    labels = train.category.iloc[labelled].tolist()
    row = {"dataset": dataset, "shots": shots, "seed": seed,
           "development_rows": len(dev_rows), "pool": len(pool_rows)}  # fmt: skip
    for name, settings in variants.items():
        cls = model_class("fewshot")
        model = cls(taxonomy, cls.config_class.from_dict(settings))
        start = time.perf_counter()
        model.fit(texts, labels, unlabelled=[titles[i] for i in pool_rows])
        fit_s = time.perf_counter() - start
        categories = train.category.tolist()
        st = model.self_training or {}
        row[name] = {
            "encoder": model.encoder.name,
            "weights": [round(float(w), 3) for w in model.weights],
            "members": list(model.members),
            **{k: st.get(k) for k in ("share", "smoothing", "prior_shift")},
            "group_development_accuracy": accuracy(model, titles, categories, dev_rows),
            "pool_accuracy": accuracy(model, titles, categories, pool_sample),
            "fit_s": round(fit_s, 1),
        }
    return row


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seeds", default="13,14,15,16,17")
    parser.add_argument("--criteria", default="log_loss,brier")
    parser.add_argument(
        "--variants",
        default="",
        help="JSON {name: fewshot settings} compared instead of --criteria, e.g. "
        '\'{"plain": {"group_folds": false}, "group_folds": {}}\'',
    )
    parser.add_argument("--out", default="")
    args = benchmark_args(parser)
    if args is None:
        return 0
    variants = (
        json.loads(args.variants)
        if args.variants
        else {c: {"mix_criterion": c} for c in args.criteria.split(",")}
    )
    criteria = list(variants)
    rows = []
    for dataset in args.datasets.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows.append(run(dataset, args.shots, seed, variants))
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else (
        RESULTS / f"mix_criterion-{args.datasets.replace(',', '-')}-{args.shots}.json"
    )  # fmt: skip
    out.write_text(json.dumps({"rows": rows}, indent=1), encoding="utf-8")
    keys = ("group_development_accuracy", "pool_accuracy")
    print("| dataset | seed | " + " | ".join(f"{c}: {k}" for c in criteria for k in keys) + " |")
    for r in rows:
        cells = [f"{r[c][k]:.4f}" for c in criteria for k in keys]
        print(f"| {r['dataset']} | {r['seed']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
