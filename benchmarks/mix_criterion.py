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
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_labels import sample_rows  # noqa: E402
from fewshot_candidates import training_split  # noqa: E402
from supervised import RESULTS, benchmark_args, benchmark_parser  # noqa: E402

WORD = re.compile(r"[a-z0-9]+")


def model_numbers(title: str) -> set[str]:
    """Tokens that look like model numbers: letters and digits, five characters or more."""
    return {
        t
        for t in WORD.findall(title.lower())
        if len(t) >= 5 and re.search(r"\d", t) and re.search(r"[a-z]", t)
    }


def product_groups(titles: list[str], max_titles: int = 30) -> np.ndarray:
    """A group id per title: titles joined by the same text or a model-number token held by
    at most `max_titles` titles (a common one, "64gb", would chain unrelated products)."""
    parent = list(range(len(titles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holders: dict[str, list[int]] = {}
    for i, title in enumerate(titles):
        holders.setdefault("title:" + title.strip().lower(), []).append(i)
        for token in model_numbers(title):
            holders.setdefault(token, []).append(i)
    for key, rows in holders.items():
        if key.startswith("title:") or len(rows) <= max_titles:
            for r in rows[1:]:
                parent[root(r)] = root(rows[0])
    return np.array([root(i) for i in range(len(titles))])


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


def run(dataset: str, shots: int, seed: int, criteria: list[str]) -> dict:
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
    for criterion in criteria:
        cls = model_class("fewshot")
        model = cls(taxonomy, cls.config_class.from_dict({"mix_criterion": criterion}))
        start = time.perf_counter()
        model.fit(texts, labels, unlabelled=[titles[i] for i in pool_rows])
        fit_s = time.perf_counter() - start
        categories = train.category.tolist()
        st = model.self_training or {}
        row[criterion] = {
            "encoder": model.encoder.name,
            "weights": [round(float(w), 3) for w in model.weights],
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
    parser.add_argument("--out", default="")
    args = benchmark_args(parser)
    if args is None:
        return 0
    criteria = args.criteria.split(",")
    rows = []
    for dataset in args.datasets.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows.append(run(dataset, args.shots, seed, criteria))
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
