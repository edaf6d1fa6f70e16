"""`fewshot` on a partly labelled catalogue, scored where choices may be made: on the pool.

Usage: TAXONOMIST_BENCH_DATA=../shared/data .venv/bin/python benchmarks/fewshot_pool.py
       --datasets pricerunner --shots 10 [--encoder use | --encoder minilm-int8+use]
       [--set KEY=JSON ...] [--name NAME]
The labelled rows and the test rows are `few_labels.py`'s (same seed, same 2,000-row test
sample); the pool is the rest of the training split with its labels removed. `fewshot` is
fitted on the labels plus the pool, then scored on the pool's hidden labels (training rows:
this is the development figure that may choose a setting) and on the test rows (scored
only). `--encoder a+b` embeds with both encoders side by side (unit vectors concatenated, so
the cosine is the mean of the two), built here for the measurement only.
Writes benchmarks/results/fewshot_pool-<dataset>-<shots>-<name>.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_labels import sample_rows, splits  # noqa: E402
from supervised import RESULTS, benchmark_args, benchmark_parser  # noqa: E402


def joined_encoder(spec: str):
    """Both encoders of `a+b`, each unit vector scaled by sqrt(1/2) and concatenated."""
    from taxonomist.encoders import EmbeddingCache, Encoder, build_cached_encoder

    parts = [build_cached_encoder(name, cache=EmbeddingCache()) for name in spec.split("+")]

    class Joined(Encoder):
        languages = frozenset({"*"})
        name = "+".join(p.name for p in parts)
        dim = sum(p.dim for p in parts)

        def _encode(self, texts, *, role, batch_size, show_progress):
            scale = np.sqrt(1.0 / len(parts))
            blocks = [scale * p.encode(texts, role=role) for p in parts]
            return np.hstack(blocks).astype(np.float32)

    return Joined()


def accuracy(model, frame) -> float:
    pred = [" > ".join(p.best.path) for p in model.predict(frame.title.tolist())]
    return round(float(np.mean(np.array(pred) == frame.category.to_numpy())), 4)


def main() -> int:
    from taxonomist.models import model_class
    from taxonomist.taxonomy import Taxonomy

    parser = benchmark_parser(__doc__, datasets="pricerunner")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--encoder", default="", help="default: MiniLM int8, E5 for zh-retail")
    parser.add_argument("--set", action="append", default=[], help="a fewshot setting KEY=JSON")
    parser.add_argument("--name", default="")
    args = benchmark_args(parser)
    if args is None:
        return 0
    for dataset in args.datasets.split(","):
        train, test = splits(dataset, 2000, 3000)
        paths = sorted(set(train.category) | set(test.category))
        taxonomy = Taxonomy.from_paths([p.split(" > ") for p in paths])
        labelled_rows = sample_rows(train, args.shots, args.seed)
        labelled = train.iloc[labelled_rows].reset_index(drop=True)
        pool = train.iloc[np.setdiff1d(np.arange(len(train)), labelled_rows)]
        chinese = dataset == "zh-retail"
        encoder_name = args.encoder or ("e5" if chinese else "minilm-int8")
        config = {"cjk_char_ngrams": (1, 3)} if chinese else {}
        config.update({k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)})
        injected = None
        if "+" in encoder_name:
            injected = joined_encoder(encoder_name)
        else:
            config["encoder"] = encoder_name
        cls = model_class("fewshot")
        model = cls(taxonomy, cls.config_class.from_dict(config), encoder=injected)
        start = time.perf_counter()
        model.fit(
            labelled.title.tolist(), labelled.category.tolist(), unlabelled=pool.title.tolist()
        )
        fit_s = time.perf_counter() - start

        history = model.report.history[0]
        result = {
            "dataset": dataset, "shots": args.shots, "seed": args.seed, "encoder": encoder_name,
            "settings": args.set, "pool_rows": len(pool), "pool_accuracy": accuracy(model, pool),
            "test_rows": len(test), "test_accuracy": accuracy(model, test), "fit_s": round(fit_s),
            "self_training": model.self_training,
            "weights": [round(float(w), 2) for w in model.weights],
            **{k: round(float(v), 4) for k, v in history.items() if k.startswith("cv_")},
        }  # fmt: skip
        print(json.dumps({k: v for k, v in result.items() if k != "self_training"}), flush=True)
        RESULTS.mkdir(exist_ok=True)
        name = args.name or encoder_name.replace("+", "-")
        out = RESULTS / f"fewshot_pool-{dataset}-{args.shots}-{name}.json"
        out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
