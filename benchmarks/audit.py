"""Label-noise audit: injected flips found by `taxonomist audit` vs cleanlab on the SVC peer.

Usage: .venv/bin/python benchmarks/audit.py [--datasets pricerunner,fashion] [--rate 0.05]
       [--preset fast] [--limit N] [--clean-top fashion]
For each dataset, 5% of the training labels are flipped (seeded): half to a sibling category
(same parent), half to any other category. Then, same rows, same run:
- ours: `analysis.audit.audit_labels` (grouped out-of-fold probabilities of the preset,
  cleanlab confident learning, duplicate conflicts); precision/recall of its flagged set and
  of its top-K (K = number of flips);
- peer: TF-IDF word 1-2 + char 2-5 + LinearSVC(C=0.5), `cross_val_predict` (5 plain
  stratified folds) of its decision function, softmaxed, into `cleanlab.filter.
  find_label_issues`; the same two measures (its top-K ranked by self-confidence).
With --clean-top DATASET the audit also runs on that dataset's unmodified training labels and
prints its ten top issues with their titles. Writes benchmarks/results/audit.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised import (  # noqa: E402
    RESULTS,
    benchmark_args,
    benchmark_parser,
    read_split,
    sample_rows,
)


def inject(labels: list[str], tax, rate: float, seed: int) -> tuple[list[str], np.ndarray]:
    """Flip `rate` of the labels: half to a sibling (another child of the same parent that
    occurs in the data), half to any other category that occurs."""
    rng = np.random.default_rng(seed)
    present = sorted(set(labels))
    siblings: dict[str, list[str]] = {}
    for cid in present:
        parent = tax.get(cid).parent_id
        siblings[cid] = [c for c in present if c != cid and tax.get(c).parent_id == parent]
    n = int(round(rate * len(labels)))
    rows = rng.choice(len(labels), n, replace=False)
    noisy = list(labels)
    for k, i in enumerate(rows):
        options = siblings[labels[i]] if k % 2 == 0 and siblings[labels[i]] else None
        if options is None:
            options = [c for c in present if c != labels[i]]
        noisy[i] = options[int(rng.integers(len(options)))]
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rows] = True
    return noisy, flipped


def scores(found: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((found & truth).sum())
    precision = tp / max(int(found.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "flagged": int(found.sum()),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def top_k(ranking: np.ndarray, k: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[ranking[:k]] = True
    return out


def svc_peer(texts: list[str], labels: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """(flagged mask, ranking by self-confidence, seconds) of cleanlab on the SVC peer."""
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    # each fold fits its own vocabularies, as the peer trained on that fold would
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    classes = sorted(set(labels))
    index = {c: j for j, c in enumerate(classes)}
    y = np.array([index[c] for c in labels])
    pipe = make_pipeline(features, LinearSVC(C=0.5))
    decision = cross_val_predict(pipe, texts, y, cv=5,
                                 method="decision_function")  # fmt: skip
    z = decision - decision.max(1, keepdims=True)
    proba = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    flagged = np.zeros(len(y), dtype=bool)
    flagged[find_label_issues(y, proba, n_jobs=1)] = True
    ranking = np.argsort(proba[np.arange(len(y)), y], kind="stable")
    return flagged, ranking, time.perf_counter() - start


def main() -> int:
    parser = benchmark_parser(__doc__, datasets="pricerunner,fashion")
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--clean-top", default="fashion")
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    args = benchmark_args(parser)
    if args is None:
        return 0
    from taxonomist.analysis.audit import audit_labels
    from taxonomist.taxonomy_loaders import from_labels

    results: dict = {"runs": [], "clean_top": []}
    out = args.out or RESULTS / ("audit.json" if not args.limit else f"audit-{args.limit}.json")
    for dataset in args.datasets.split(","):
        train = sample_rows(read_split(dataset, "train", ("title",)), args.limit)
        tax = from_labels(train.category)
        texts = train.text.tolist()
        labels = [tax.by_path(c).id for c in train.category]
        noisy, flipped = inject(labels, tax, args.rate, args.seed)
        k = int(flipped.sum())
        sibling = np.array(
            [flipped[i] and tax.get(noisy[i]).parent_id == tax.get(labels[i]).parent_id
             for i in range(len(labels))]
        )  # fmt: skip
        start = time.perf_counter()
        audit = audit_labels(texts, noisy, tax, preset=args.preset, seed=args.seed)
        ours_s = time.perf_counter() - start
        ours_flag = audit.flagged
        peer_flag, peer_rank, peer_s = svc_peer(texts, noisy)
        row = {
            "dataset": dataset,
            "rows": len(labels),
            "flips": k,
            "sibling_flips": int(sibling.sum()),
            "ours": {
                "preset": args.preset,
                "flagged_set": scores(ours_flag, flipped),
                "top_k": scores(top_k(audit.ranking, k, len(labels)), flipped),
                "sibling_recall_top_k": round(
                    float((top_k(audit.ranking, k, len(labels)) & sibling).sum() / sibling.sum()),
                    4,
                ),
                "seconds": round(ours_s, 1),
            },
            "svc_cleanlab": {
                "flagged_set": scores(peer_flag, flipped),
                "top_k": scores(top_k(peer_rank, k, len(labels)), flipped),
                "sibling_recall_top_k": round(
                    float((top_k(peer_rank, k, len(labels)) & sibling).sum() / sibling.sum()), 4
                ),
                "seconds": round(peer_s, 1),
            },
        }
        results["runs"].append(row)
        RESULTS.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(json.dumps(row, indent=1), flush=True)
        if dataset == args.clean_top:
            clean = audit_labels(texts, labels, tax, preset=args.preset, seed=args.seed)
            results["clean_top"] = [
                {
                    "title": i.title,
                    "given": i.given,
                    "suggested": i.suggested,
                    "level": i.level,
                    "score": round(i.score, 4),
                    "reason": i.reason,
                }  # fmt: skip
                for i in clean.issues[:10]
            ]
            results["clean_issue_count"] = len(clean.issues)
            out.write_text(json.dumps(results, indent=2))
            print(json.dumps(results["clean_top"], indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
