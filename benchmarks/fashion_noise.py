"""How much of fashion's leaf error is in its labels: the evidence behind issue 3's fashion target.

Usage: .venv/bin/python benchmarks/fashion_noise.py
Writes benchmarks/results/fashion_noise.json and prints it. About a minute on 2 cores.

The TF-IDF + LinearSVC peer of issue 3 is trained on the title text and its test errors are
set against what the labels themselves allow:
- forced errors: test titles that occur more than once with different leaf labels; any model
  of the title alone gets all but the commonest label of each such title wrong;
- label agreement of identical titles, pair by pair, in train and in test, and the per-row
  label noise that agreement implies if noise is symmetric (two rows of one title agree with
  probability (1-e)^2 + e^2, near enough);
- the "lookup": a title with its colour words removed ("Portia Women Black Flats" ->
  "portia women flats") is looked up among the training rows with the same key, and their
  commonest label is predicted. It is what the training labels say about that product, so
  where it errs, a model that learns from those labels errs too;
- the SVC again with the catalogue's other columns (gender, usage, colour) added to its text,
  to show how far structured attributes (not title text) move the errors.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter

import numpy as np
import pandas as pd
from supervised import DATA, RESULTS, read_splits, svc_fit_predict

# Colour words beyond the baseColour column's own vocabulary that titles use for colours.
EXTRA_COLOUR_WORDS = {"coloured", "off", "light", "dark", "gun", "metal", "cherry", "bluish"}


def main() -> int:
    if not (DATA / "fashion").exists():
        print(f"skipped: development data not found at {DATA}")
        return 0
    train, test = read_splits("fashion")
    gold = test.category.to_numpy()
    pred, _, _ = svc_fit_predict(train.text, train.category, test.text)
    wrong = pred != gold

    colour_words = {
        w.lower() for c in train.baseColour.unique() for w in c.split()
    } | EXTRA_COLOUR_WORDS
    key = _colour_blind_key(colour_words)
    train["key"] = train.text.map(key)
    test["key"] = test.text.map(key)
    lookup = train.groupby("key").category.agg(lambda s: s.value_counts().index[0])
    matched = test.key.isin(lookup.index).to_numpy()
    looked_up = test.key.map(lookup).to_numpy()

    result = {
        "test_rows": len(test),
        "svc_errors": int(wrong.sum()),
        "target_errors": int(0.75 * wrong.sum()),
        "forced_errors_identical_test_titles": _minority_rows(test, "text"),
        "identical_title_agreement": {
            split: _pair_agreement(frame) for split, frame in (("train", train), ("test", test))
        },
        "colour_blind_lookup": {
            "test_rows_with_a_training_key": int(matched.sum()),
            "lookup_errors_on_them": int((looked_up[matched] != gold[matched]).sum()),
            "svc_errors_on_them": int(wrong[matched].sum()),
            "svc_errors_on_the_other_rows": int(wrong[~matched].sum()),
            "other_rows": int((~matched).sum()),
            "svc_errors_agreeing_with_the_lookup": int((wrong & (pred == looked_up)).sum()),
        },
        "test_label_oracles": {
            # these see the test labels: lower bounds for a model that ignores colour words
            "commonest_test_label_per_colour_blind_title": _minority_rows(test, "key"),
            "commonest_train_plus_test_label_per_colour_blind_title": int(
                (
                    pd.concat([train, test])
                    .groupby("key")
                    .category.transform(lambda s: s.value_counts().index[0])
                    .iloc[len(train) :]
                    .to_numpy()
                    != gold
                ).sum()
            ),
        },
        "word_flats_leaf_labels": {
            split: dict(
                Counter(
                    c.rsplit(" > ", 1)[-1]
                    for t, c in zip(frame.text, frame.category)
                    if re.search(r"\bflats\b", t.lower())
                ).most_common(4)
            )
            for split, frame in (("train", train), ("test", test))
        },
        "largest_svc_confusions": [
            {"gold": g.rsplit(" > ", 1)[-1], "predicted": p.rsplit(" > ", 1)[-1], "errors": n}
            for (g, p), n in Counter(zip(gold[wrong], pred[wrong])).most_common(8)
        ],
        "svc_errors_with_attribute_columns": _with_attributes(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fashion_noise.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def _colour_blind_key(colour_words: set[str]):
    def key(text: str) -> str:
        return " ".join(
            w for w in re.findall(r"[a-z0-9&']+", text.lower()) if w not in colour_words
        )

    return key


def _minority_rows(frame: pd.DataFrame, by: str) -> int:
    """Rows whose label is not the commonest one among the rows sharing their `by` value."""
    commonest = frame.groupby(by).category.transform(lambda s: s.value_counts().index[0])
    return int((commonest != frame.category).sum())


def _pair_agreement(frame: pd.DataFrame) -> dict:
    pairs = disagreeing = 0
    rows = 0
    for _, counts in frame.groupby("text").category.value_counts().groupby(level=0):
        n = int(counts.sum())
        if n < 2:
            continue
        rows += n
        pairs += n * (n - 1) // 2
        disagreeing += n * (n - 1) // 2 - int(sum(c * (c - 1) // 2 for c in counts))
    rate = disagreeing / pairs
    noise = (1 - np.sqrt(1 - 2 * rate)) / 2
    return {
        "rows_in_repeated_titles": rows,
        "pairs": pairs,
        "pair_disagreement": round(rate, 4),
        "implied_row_label_noise": round(float(noise), 4),
    }


def _with_attributes() -> dict:
    out = {}
    for columns in (
        ("title", "usage"),
        ("title", "gender", "usage"),
        ("title", "gender", "baseColour", "usage"),
    ):
        train, test = read_splits("fashion", columns)
        pred, _, _ = svc_fit_predict(train.text, train.category, test.text)
        out["+".join(columns)] = int((pred != test.category.to_numpy()).sum())
    return out


if __name__ == "__main__":
    sys.exit(main())
