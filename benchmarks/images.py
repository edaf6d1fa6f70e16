"""Image benchmark on fashion: text-only, image-only, fusion, image zero-shot; same run.

Usage: .venv/bin/python benchmarks/images.py [--train-limit N] [--skip-zero-shot]
       [--extra-seeds 14,15] [--seed-presets balanced,best]
Writes benchmarks/results/images.json and prints Markdown tables.

What is compared (all on the fashion test split, 3-level paths):
- TF-IDF (word 1-2 + char 2-5, sublinear) + LinearSVC(C=0.5) on titles: the peer.
- text-only: our `fast` text model (the late-fusion text member) on titles.
- image-only: the `image` kind (frozen EfficientNet-Lite0 + MLP head).
- fusion: `fusion` with the balanced preset (late: TF-IDF text model + image head, the image
  model's class prior divided out), the best preset (late + the gated early network), and
  the early network alone.
- zero-shot image (no labels): ImageNet bridge vs the LiT-style alignment trained on the
  train split's (photo, title) pairs; also text zero-shot, and text + each image scorer.
- missing images: the image column emptied for half the test rows (seeded); fusion vs
  text-only on the rows that keep their photo and on the rows that lost it.
Image features are cached by content (EmbeddingCache), so the first run pays the encoding.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fashion"
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "src"))


def scores(gold: list[tuple[str, ...]], pred: list[tuple[str, ...]]) -> dict[str, float]:
    """Accuracy and macro-F1 at each level (L1, L2, leaf), from the project's evaluator."""
    from taxonomist.evaluation import evaluate

    result = evaluate(gold, pred, None)
    out = {"accuracy": result.metrics["accuracy"], "f1_macro": result.metrics["f1_macro"]}
    for row in result.per_level:
        level = int(row["level"])
        out[f"L{level}_accuracy"] = row["accuracy"]
        out[f"L{level}_f1_macro"] = row.get("f1_macro", float("nan"))
    return out


def paths_of(preds) -> list[tuple[str, ...]]:
    return [p.best.path for p in preds]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-limit", type=int, default=0, help="use the first N train rows")
    parser.add_argument("--skip-zero-shot", action="store_true")
    parser.add_argument(
        "--extra-seeds", default="14,15",
        help="retrain fusion with these seeds too (split and initialisation)",
    )  # fmt: skip
    parser.add_argument(
        "--seed-presets", default="balanced,best", help="the fusion presets to retrain"
    )
    args = parser.parse_args()

    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from taxonomist.items import Item
    from taxonomist.taxonomy_loaders import from_labels
    from taxonomist.training import FUSION_PRESETS, Preset, train_model

    train = pd.read_csv(DATA / "train.csv", dtype={"id": str})
    test = pd.read_csv(DATA / "test.csv", dtype={"id": str})
    if args.train_limit:
        train = train.iloc[: args.train_limit]
    tax = from_labels(pd.concat([train.category, test.category]))
    gold = [tax.by_path(c).path for c in test.category]

    def items(frame: pd.DataFrame, keep_image: np.ndarray | None = None) -> list[Item]:
        out = []
        for i, (title, image) in enumerate(zip(frame.title, frame.image)):
            use = keep_image is None or keep_image[i]
            out.append(Item(title, str(DATA / image) if use else None))
        return out

    train_items, test_items = items(train), items(test)
    labels = [tax.by_path(c).id for c in train.category]
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}

    def record(name: str, pred: list[tuple[str, ...]], seconds: float) -> None:
        results[name] = {**scores(gold, pred), "seconds": round(seconds, 1)}
        r = results[name]
        print(f"{name}: acc {r['accuracy']:.4f} macro-F1 {r['f1_macro']:.4f} ({seconds:.0f} s)")

    # the peer, on titles
    t0 = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    x = hstack([word.fit_transform(train.title), char.fit_transform(train.title)]).tocsr()
    svc = LinearSVC(C=0.5).fit(x, train.category)
    pred = svc.predict(hstack([word.transform(test.title), char.transform(test.title)]).tocsr())
    record("TF-IDF + LinearSVC (peer, titles)", [tax.by_path(p).path for p in pred],
           time.perf_counter() - t0)  # fmt: skip

    # warm the image cache for both splits (timed separately: it is a one-off per catalogue)
    from taxonomist.encoders.cache import EmbeddingCache
    from taxonomist.encoders.image import ImageEncoder

    t0 = time.perf_counter()
    ImageEncoder(cache=EmbeddingCache()).features(
        [it.image for it in train_items + test_items], show_progress=True
    )
    timings["image_features_s"] = round(time.perf_counter() - t0, 1)

    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        specs = [
            ("text-only (fast: TF-IDF linear)", "linear", "fast", [t.text for t in train_items]),
            ("image-only (image kind)", "image", "balanced", train_items),
            ("fusion (balanced: late)", "fusion", "balanced", train_items),
            ("fusion, early only", "fusion-early", "best", train_items),
            ("fusion (best: late + early)", "fusion", "best", train_items),
        ]
        for name, kind, preset, inputs in specs:
            overrides = {"mode": "early"} if kind == "fusion-early" else None
            t0 = time.perf_counter()
            trained = train_model(
                inputs, labels, tax, Path(tmp) / name.split()[0], preset=preset,
                kind=kind.split("-")[0], overrides=overrides,
            )  # fmt: skip
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            test_inputs = [t.text for t in test_items] if kind == "linear" else test_items
            pred = paths_of(trained.model.predict(test_inputs))
            record(name, pred, time.perf_counter() - t0)
            results[name]["train_seconds"] = round(fit_s, 1)
            models[name] = trained.model

        # seed spread: rare classes make leaf macro-F1 move by a few thousandths between runs
        labelled = {"balanced": "balanced: late", "best": "best: late + early", "fast": "fast"}
        for preset in args.seed_presets.split(","):
            for seed in [int(s) for s in args.extra_seeds.split(",") if s]:
                name = f"fusion ({labelled[preset]}), seed {seed}"
                trained = train_model(
                    train_items, labels, tax, Path(tmp) / f"{preset}{seed}", preset=preset,
                    kind="fusion", seed=seed,
                    # overrides replace a whole field: keep the preset's image settings
                    overrides={"seed": seed, "image_config": {
                        **FUSION_PRESETS[Preset.from_str(preset)].get("image_config", {}),
                        "seed": seed,
                    }},
                )  # fmt: skip
                record(name, paths_of(trained.model.predict(test_items)), 0.0)

        # half the photos gone: fusion must still help where a photo is, and not hurt elsewhere
        keep = np.random.default_rng(7).random(len(test)) < 0.5
        fusion = models["fusion (balanced: late)"]
        text_model = models["text-only (fast: TF-IDF linear)"]
        fused = paths_of(fusion.predict(items(test, keep)))
        text_pred = paths_of(text_model.predict(list(test.title)))
        missing: dict[str, dict] = {}
        for part, mask in (("rows keeping the photo", keep), ("rows without a photo", ~keep)):
            g = [gold[i] for i in np.flatnonzero(mask)]
            missing[part] = {
                "rows": int(mask.sum()),
                "fusion": scores(g, [fused[i] for i in np.flatnonzero(mask)]),
                "text-only": scores(g, [text_pred[i] for i in np.flatnonzero(mask)]),
            }
            m = missing[part]
            print(f"half missing, {part}: fusion {m['fusion']['accuracy']:.4f} vs text-only "
                  f"{m['text-only']['accuracy']:.4f}")  # fmt: skip

    if not args.skip_zero_shot:
        zero_shot(train, test, tax, gold, items, results, timings)

    RESULTS.mkdir(exist_ok=True)
    out = {
        "data": "fashion",
        "train_rows": len(train),
        "test_rows": len(test),
        "results": results,
        "half_missing": missing,
        "timings": timings,
    }
    (RESULTS / "images.json").write_text(json.dumps(out, indent=2))
    print("\n| model | acc | macro-F1 | L1 acc | L1 F1 | L2 acc | L2 F1 | L3 acc | L3 F1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [f"{r.get(k, float('nan')):.4f}" for k in (
            "accuracy", "f1_macro", "L1_accuracy", "L1_f1_macro", "L2_accuracy", "L2_f1_macro",
            "L3_accuracy", "L3_f1_macro")]  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")


def zero_shot(train, test, tax, gold, items, results, timings) -> None:
    """No labels: the category names of the fashion taxonomy against photos and titles."""
    from taxonomist.encoders import EmbeddingCache, build_encoder_set
    from taxonomist.encoders.image import ImageEncoder
    from taxonomist.zeroshot import ZeroShotClassifier
    from taxonomist.zeroshot_images import ImageNetBridge, ImageTextAlignment

    cache = EmbeddingCache()
    encoders = build_encoder_set("minilm", cache=cache)
    clf = ZeroShotClassifier(tax, encoders)
    category_texts = clf.candidate_texts()
    test_items = items(test)
    images = [it.image for it in test_items]
    titles = list(test.title)
    empty = [""] * len(titles)

    t0 = time.perf_counter()
    bridge = ImageNetBridge(encoders.fallback, ImageEncoder(cache=cache))
    bridge_logp = bridge.log_probs(images, category_texts)
    pred = paths_of(clf.predict(empty, image_log_probs=bridge_logp))
    results_time = time.perf_counter() - t0
    results["zero-shot image: ImageNet bridge"] = {**scores(gold, pred),
                                                   "seconds": round(results_time, 1)}  # fmt: skip

    t0 = time.perf_counter()
    alignment = ImageTextAlignment(
        text_encoder=encoders.fallback, image_encoder=ImageEncoder(cache=cache)
    )
    history = alignment.fit([it.image for it in items(train)], list(train.title))
    timings["alignment_train_s"] = round(time.perf_counter() - t0, 1)
    timings["alignment_valid_retrieval"] = history[-1].get("valid_retrieval_accuracy")
    t0 = time.perf_counter()
    align_logp = alignment.log_probs(images, category_texts)
    pred = paths_of(clf.predict(empty, image_log_probs=align_logp))
    results["zero-shot image: trained alignment (LiT)"] = {
        **scores(gold, pred),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    pred = paths_of(clf.predict(titles))
    results["zero-shot text"] = scores(gold, pred)
    for name, logp, weight in (
        ("bridge", bridge_logp, bridge.image_weight),
        ("alignment", align_logp, alignment.image_weight),
    ):
        pred = paths_of(clf.predict(titles, image_log_probs=logp, image_weight=weight))
        results[f"zero-shot text + image ({name})"] = scores(gold, pred)
    for name in [k for k in results if k.startswith("zero-shot")]:
        r = results[name]
        print(f"{name}: acc {r['accuracy']:.4f} macro-F1 {r['f1_macro']:.4f}")


if __name__ == "__main__":
    main()
