"""`fewshot` self-training on unlabelled products: chosen when it helps, refused when the
pseudo-labels are garbage, saved and loaded, and reachable from the CLI."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taxonomist.cli import app
from taxonomist.errors import ConfigError, DataError
from taxonomist.models import load_model, model_class
from taxonomist.models.selftrain import (
    best_candidate,
    catalogue_prior,
    confidence_weights,
    pseudo_labels,
    score_candidate,
    select_confident,
)
from taxonomist.service import read_unlabelled
from taxonomist.store import file_digest
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.training import train_model

CLASSES = ["Shoes", "Shirts", "Watches", "Lamps"]


def made_up_words(seed: int = 3) -> dict[str, list[str]]:
    """Eight made-up words a category."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("bcdfghjklmnpqrstvwxz"))
    return {c: ["".join(rng.choice(letters, 7)) for _ in range(8)] for c in CLASSES}


def bridged_corpus(seed: int = 3):
    """Made-up words, eight a category. Labelled: one word a title, the first four of each
    category; test: the other four, which only the unlabelled titles (pairs of a category's
    words) tie to a labelled word. Garbage: pairs of words of two different categories."""
    words = made_up_words(seed)
    labelled = [(w, c) for c in CLASSES for w in words[c][:4]]
    pool = [f"{a} {b}" for c in CLASSES for a in words[c] for b in words[c] if a < b]
    test = [(w, c) for c in CLASSES for w in words[c][4:]]
    every = [w for c in CLASSES for w in words[c]]
    garbage = [
        f"{a} {b}" for i, a in enumerate(every) for j, b in enumerate(every) if i // 8 < j // 8
    ]
    return labelled, pool, test, garbage


def fit(labelled, unlabelled=None, **config):
    cls = model_class("fewshot")
    settings = {"encoder": "fake", **config}
    model = cls(from_labels(CLASSES), cls.config_class.from_dict(settings))
    model.fit([t for t, _ in labelled], [c for _, c in labelled], unlabelled=unlabelled)
    return model


def accuracy(model, rows) -> float:
    pred = model.predict([t for t, _ in rows])
    return float(np.mean([p.best.path[0] == c for p, (_, c) in zip(pred, rows)]))


def test_self_training_is_chosen_where_the_pool_ties_words_to_labels(tmp_path):
    labelled, pool, test, _ = bridged_corpus()
    alone = fit(labelled)
    model = fit(labelled, pool)
    chosen = model.self_training
    assert chosen is not None and chosen["share"] > 0 and chosen["pseudo_labels"] > 0
    assert chosen["unlabelled_rows"] == len(set(pool))
    figures = {(c["share"], c["prior_shift"]): c["cv_log_loss"] for c in chosen["candidates"]}
    assert (0.0, 0.0) in figures  # "no pseudo-labels" was a candidate and lost
    assert min(figures.values()) < figures[(0.0, 0.0)]
    assert all(0 <= c["cv_brier"] <= 2 for c in chosen["candidates"])  # bounded, unlike log-loss
    assert accuracy(model, test) > accuracy(alone, test)
    # round trip: same probabilities, what was chosen in the manifest
    path = model.save(tmp_path / "m")
    loaded = load_model(path)
    probe = [t for t, _ in test]
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-5)
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    assert manifest["self_training"]["share"] == chosen["share"]
    assert loaded.self_training_share == chosen["share"]
    assert loaded.pool_smoothing == chosen["smoothing"]
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pickle"))


def test_a_model_switches_to_any_candidate_and_back():
    labelled, pool, test, _ = bridged_corpus()
    model = fit(labelled, pool)
    texts, labels = [t for t, _ in labelled], [c for _, c in labelled]
    probe = [t for t, _ in test]
    chosen = dict(model.self_training)
    before = model.predict_proba(probe)
    keys = ("share", "smoothing", "prior_shift", "pseudo_labels_shifted")
    same = [c for c in chosen["candidates"] if all(c[k] == chosen[k] for k in keys)]
    assert len(same) == 1 and same[0]["weights"] == list(model.weights)
    none = next(c for c in chosen["candidates"] if c["share"] == 0 and c["prior_shift"] == 0)
    model.use_candidate(none, texts, labels)
    assert model.self_training["share"] == 0 and model.self_training["pseudo_labels"] == 0
    assert accuracy(model, test) < accuracy(fit(labelled, pool), test)  # the words are lost
    model.use_candidate(same[0], texts, labels)  # back to cross-validation's choice
    assert model.self_training["pseudo_labels"] == chosen["pseudo_labels"]
    np.testing.assert_allclose(model.predict_proba(probe), before, atol=1e-6)
    with pytest.raises(ConfigError, match="unlabelled"):
        fit(labelled).use_candidate(none, texts, labels)


def test_garbage_pseudo_labels_are_refused():
    labelled, _, _, garbage = bridged_corpus()
    model = fit(labelled, garbage)
    assert model.self_training is not None
    assert model.self_training["share"] == 0 and model.self_training["pseudo_labels"] == 0


def test_helpers():
    pred = np.array([0, 0, 0, 0, 1, 1])
    confidence = np.array([0.9, 0.2, 0.8, 0.1, 0.5, 0.6])
    # half of each predicted class, the most confident; a small class keeps one
    assert select_confident(pred, confidence, 0.5).tolist() == [0, 2, 5]
    # a model that puts three quarters of the pool in class 0 moves the prior there
    logp = np.log(np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]]))
    prior = catalogue_prior(logp, np.array([0.5, 0.5]))
    assert prior[0] > 0.7 and abs(prior.sum() - 1) < 1e-9
    # the lowest score among candidates as accurate as the baseline; a tie to the smaller key
    figures = {
        0: {"cv_accuracy": 0.8, "s": 0.5},
        1: {"cv_accuracy": 0.7, "s": 0.1},  # surer, but more errors
        2: {"cv_accuracy": 0.8, "s": 0.3},
        3: {"cv_accuracy": 0.9, "s": 0.3},
    }
    assert best_candidate(figures, 0, "s") == 2


def test_pseudo_labels_follow_the_catalogues_class_mix():
    # a product the few labels put a little nearer a small category than a big one (in a
    # labelled sample of k a category, the small one looks as common as the big one)
    scores = [np.log(np.array([[0.55, 0.45], [0.9, 0.1], [0.2, 0.8]]))]
    pred, _ = pseudo_labels(scores, np.ones(1), np.ones(1))
    assert pred.tolist() == [0, 0, 1]
    # the catalogue holds four of the big one for each of the small one: the doubtful
    # product goes to the big one, the sure ones stay
    shift = np.log(np.array([0.2, 0.8])) - np.log(np.array([0.5, 0.5]))
    pred, confidence = pseudo_labels(scores, np.ones(1), np.ones(1), bias=shift)
    assert pred.tolist() == [1, 0, 1]
    assert confidence[0] == pytest.approx(0.45 * 4 / (0.55 + 0.45 * 4))


def test_a_skewed_pool_offers_pseudo_labels_under_its_class_mix():
    # labelled: the same number of each category; the pool: half of it the first category
    words = made_up_words()
    labelled = [(f"{a} {b}", c) for c in CLASSES for a, b in combinations(words[c][:4], 2)]
    pool = [f"{a} {b}" for c in CLASSES for a, b in combinations(words[c], 2)]
    pool += [" ".join(t) for t in combinations(words[CLASSES[0]], 3)]
    chosen = fit(labelled, pool).self_training
    assert chosen["class_mix"]["trusted"] and chosen["pseudo_label_shift_offered"]
    shifted = {c["pseudo_labels_shifted"] for c in chosen["candidates"] if c["share"]}
    assert shifted == {True, False}  # every share and smoothing, with and without
    assert isinstance(chosen["pseudo_labels_shifted"], bool)
    off = fit(labelled, pool, shift_pseudo_labels=False).self_training
    assert not off["pseudo_label_shift_offered"] and not off["pseudo_labels_shifted"]
    assert not any(c["pseudo_labels_shifted"] for c in off["candidates"])


def test_doubtful_pseudo_labels_weigh_less():
    weights = confidence_weights(np.array([0.9, 0.5, 0.3]), 4.0)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2] > 0
    # over many categories probabilities are small; the weights' scale does not follow
    small = confidence_weights(np.array([0.045, 0.05, 0.06]), 4.0)
    assert small.mean() == pytest.approx(1.0) and small[2] > small[0]
    assert confidence_weights(np.array([0.9, 0.1]), 0.0).tolist() == [1.0, 1.0]
    assert len(confidence_weights(np.zeros(0), 4.0)) == 0


def test_the_svm_hears_the_weights():
    cls = model_class("fewshot")
    model = cls(from_labels(CLASSES), cls.config_class.from_dict({"encoder": "fake"}))
    model.labels = list(CLASSES)
    x = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3 + [[1.0, 0.1]] * 2)
    # the last two rows say the same thing with different labels: the heavier one wins
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    ones = np.ones(6)
    coef, intercept = model._fit_svc(x, y, np.append(ones, [8.0, 0.1]))
    assert np.argmax(coef @ x[6] + intercept) == 1
    coef, intercept = model._fit_svc(x, y, np.append(ones, [0.1, 8.0]))
    assert np.argmax(coef @ x[6] + intercept) == 0


def test_pseudo_label_power_is_checked():
    cls = model_class("fewshot")
    with pytest.raises(ConfigError, match="pseudo_label_power"):
        cls.config_class.from_dict({"pseudo_label_power": -1})
    with pytest.raises(ConfigError, match="mix_criterion"):
        cls.config_class.from_dict({"mix_criterion": "accuracy"})


def test_the_mix_is_chosen_by_the_criterion_asked_for():
    # out-of-fold scores of two members on 30 rows, where the two criteria part ways
    rng = np.random.default_rng(5)
    y = rng.integers(3, size=30)
    student = rng.normal(size=(30, 3)) + 2.5 * np.eye(3)[y]
    prototypes = rng.normal(size=(30, 3)) * 0.5 + np.eye(3)[y]
    prototypes -= np.log(np.exp(prototypes).sum(1, keepdims=True))
    args = (prototypes, student, y, 0.1, np.ones(len(y)), np.zeros(3))
    by_brier = score_candidate(*args, criterion="brier")
    by_log_loss = score_candidate(*args, criterion="log_loss")
    assert by_brier["weights"] != by_log_loss["weights"]
    assert by_brier["cv_brier"] < by_log_loss["cv_brier"]
    assert by_log_loss["cv_log_loss"] < by_brier["cv_log_loss"]
    assert score_candidate(*args) == by_brier  # the default


def test_a_candidates_mix_keeps_to_the_labels_only_accuracy_where_it_can():
    # two noisy members on 30 rows, where the lowest-Brier mix is not the most accurate
    rng = np.random.default_rng(1)
    y = rng.integers(3, size=30)
    student = rng.normal(size=(30, 3)) * 1.5 + 1.5 * np.eye(3)[y]
    prototypes = rng.normal(size=(30, 3)) * 0.7 + np.eye(3)[y]
    prototypes -= np.log(np.exp(prototypes).sum(1, keepdims=True))
    args = (prototypes, student, y, 0.1, np.ones(len(y)), np.zeros(3))
    free = score_candidate(*args)
    accuracies = {score_candidate(*args, floor=f)["cv_accuracy"] for f in np.linspace(0, 1, 31)}
    most = max(accuracies)
    assert most > free["cv_accuracy"]  # a mix more accurate than the lowest-Brier one
    held = score_candidate(*args, floor=most)
    assert held["cv_accuracy"] >= most and held["cv_brier"] > free["cv_brier"]
    assert score_candidate(*args, floor=2.0) == free  # out of reach: as without a floor


def test_smoothed_pseudo_labels_follow_the_pools_neighbours():
    from scipy import sparse

    from taxonomist.models.selftrain import pseudo_labels
    from taxonomist.neighbours import neighbour_graph

    # two kinds of title (the n-grams they share); the members misread one of the first
    x = sparse.csr_matrix(np.repeat(np.eye(2), 5, axis=0))
    scores = np.repeat([[2.0, 0.0], [0.0, 2.0]], 5, axis=0)
    scores[2] = [0.0, 0.5]
    pred, _ = pseudo_labels([scores], [1.0], [1.0])
    assert pred[2] == 1
    pred, confidence = pseudo_labels([scores], [1.0], [1.0], neighbour_graph(x, 3), 0.8)
    assert pred.tolist() == [0] * 5 + [1] * 5
    assert np.all((confidence > 0.5) & (confidence <= 1.0))


def test_spreading_starts_from_titles_whose_named_category_the_members_agree_with():
    from scipy import sparse

    from taxonomist.models.selftrain import anchor_agreed_names
    from taxonomist.neighbours import neighbour_graph

    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.5, 0.5], [0.3, 0.7]])
    named = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    anchored = anchor_agreed_names(probs, named)
    # agreed: certain; a name the members doubt, two names or none: as they were
    assert anchored.tolist() == [[1.0, 0.0], [0.6, 0.4], [0.5, 0.5], [0.3, 0.7]]
    assert anchor_agreed_names(probs, np.zeros_like(probs)) is probs

    # one kind of title: two say its name and the members agree, three are unsure and lean
    # the other way; spreading from the two carries the whole kind
    x = sparse.csr_matrix(np.ones((5, 1)))
    scores = np.log(np.array([[0.52, 0.48]] * 2 + [[0.4, 0.6]] * 3))
    named = np.array([[1, 0]] * 2 + [[0, 0]] * 3, dtype=float)
    graph = neighbour_graph(x, 4)
    plain, _ = pseudo_labels([scores], [1.0], [1.0], graph, 0.8)
    pred, confidence = pseudo_labels([scores], [1.0], [1.0], graph, 0.8, named=named)
    assert plain.tolist() == [1] * 5 and pred.tolist() == [0] * 5
    # without spreading there is nothing to start from: the names change nothing
    raw, _ = pseudo_labels([scores], [1.0], [1.0], named=named)
    assert raw.tolist() == [0, 0, 1, 1, 1]


def test_the_manifest_says_whether_the_chosen_pseudo_labels_were_spread_from_names():
    labelled, pool, _, _ = bridged_corpus()
    # half the labelled titles and a third of the pool's say their category's name, so
    # the names are a member and the spread candidates start from them
    labelled = [(f"{w} {c.lower()}" if i % 2 else w, c) for i, (w, c) in enumerate(labelled)]
    words = made_up_words()
    kind = {w: c for c in CLASSES for w in words[c]}
    pool = [f"{t} {kind[t.split()[0]].lower()}" if i % 3 == 0 else t for i, t in enumerate(pool)]
    model = fit(labelled, pool)
    assert len(model.weights) == 3
    record = model.self_training
    assert record["name_anchors"] == (record["smoothing"] > 0)
    assert record["mix_criterion"] == "brier"  # the default, recorded
    texts, labels = [t for t, _ in labelled], [c for _, c in labelled]
    for candidate in record["candidates"]:
        model.use_candidate(candidate, texts, labels)
        assert model.self_training["name_anchors"] == (candidate["smoothing"] > 0)
    off = fit(labelled, pool, name_anchors=False)
    spread = [c for c in off.self_training["candidates"] if c["smoothing"]]
    off.use_candidate(spread[0], texts, labels)
    assert off.self_training["name_anchors"] is False


def test_each_fold_leaves_its_held_out_products_copies_out_of_its_pseudo_labels(monkeypatch):
    labelled, pool, _, _ = bridged_corpus()
    # the pool holds a copy of every labelled title, as a catalogue's other sellers do
    pool = pool + [t for t, _ in labelled]
    cls = model_class("fewshot")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    fit_svc = cls._fit_svc_with_pseudo_labels

    def spy(self, x, y, x_pseudo, y_pseudo, confidence):
        seen.append((x.toarray(), x_pseudo.toarray()))
        return fit_svc(self, x, y, x_pseudo, y_pseudo, confidence)

    monkeypatch.setattr(cls, "_fit_svc_with_pseudo_labels", spy)

    def copies_of_held_out_rows(model) -> int:
        """Pseudo-labels, over the cross-validation fits, that copy a held-out title."""
        x_all = model._pool_features[1].toarray()
        count = 0
        for x, x_pseudo in seen:
            trained = {r.tobytes() for r in x}
            held = {r.tobytes() for r in x_all} - trained
            count += sum(r.tobytes() in held for r in x_pseudo)
        return count

    model = fit(labelled, pool)
    record = model.self_training
    assert record["group_folds"] is True
    # four folds (four labels a category), four held-out titles each, one copy of each
    assert record["mean_pool_copies_left_out_per_fold"] == 4
    assert seen and copies_of_held_out_rows(model) == 0
    seen.clear()
    off = fit(labelled, pool, group_folds=False)
    assert off.self_training["group_folds"] is False
    assert off.self_training["mean_pool_copies_left_out_per_fold"] == 0
    assert copies_of_held_out_rows(off) > 0  # without it, the student learns the copies


def series_corpus():
    """`bridged_corpus`'s labelled titles; a pool of titles made of a category's word and a
    series code (eight letters and digits) that one other pool title shares."""
    labelled, _, _, _ = bridged_corpus()
    words = made_up_words()
    rng = np.random.default_rng(7)
    alphabet = list("abcdefghjkmnpqrstuvwxyz23456789")
    codes = {c: ["".join(rng.choice(alphabet, 8)) for _ in range(6)] for c in CLASSES}
    pool = [f"{code} {w}" for c in CLASSES for code in codes[c] for w in words[c][:2]]
    return labelled, pool, codes


def test_the_pools_memory_votes_with_its_series_and_is_saved(tmp_path):
    labelled, pool, codes = series_corpus()
    model = fit(labelled, pool)
    record = model.self_training
    assert record["pool_memory_offered"] is True
    assert record["pool_memory"] == ("memory" in model.members)
    for candidate in record["candidates"]:  # prototypes, linear, memory (0 without a pool)
        assert len(candidate["weights"]) == 3
        assert candidate["share"] or candidate["weights"][2] == 0
    # a candidate that leans on the memory, as a user overriding the choice might
    spread = next(c for c in record["candidates"] if c["smoothing"])
    texts, labels = [t for t, _ in labelled], [c for _, c in labelled]
    model.use_candidate({**spread, "weights": [0.0, 0.5, 0.5]}, texts, labels)
    assert model.members == ["prototypes", "linear", "memory"]
    # a new product of a pool series: its code, and a word from nowhere
    probe = [f"{codes[c][0]} qqqqqqq" for c in CLASSES]
    prepared = model.prepare(probe)
    votes = model._memory_scores(model._tfidf.transform(prepared), prepared)
    assert votes.argmax(1).tolist() == [model.labels.index(c) for c in CLASSES]
    # a pool title: not its own vote but its series' other title's (`test_pool_memory`)
    own = model.prepare([pool[0]])
    own_votes = model._memory_scores(model._tfidf.transform(own), own)
    assert own_votes.argmax(1).tolist() == [model.labels.index(CLASSES[0])]
    path = model.save(tmp_path / "m")
    loaded = load_model(path)
    assert loaded.members == model.members
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-5)
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    assert manifest["members"] == ["prototypes", "linear", "memory"]
    # refitted on every label in this process: the memory is rebuilt with the student
    model.refit_full(texts, labels)
    assert model.members[-1] == "memory" and model._memory is not None
    # a loaded model has no pool to rebuild it from: the others take its weight
    loaded.refit_full(texts, labels)
    assert loaded.members == ["prototypes", "linear"] and loaded._memory is None
    assert loaded.weights.sum() == pytest.approx(1.0)
    # back to a candidate without pseudo-labels: no memory, none saved
    none = next(c for c in record["candidates"] if not c["share"])
    model.use_candidate(none, texts, labels)
    assert "memory" not in model.members and model._memory is None
    from safetensors.numpy import load_file

    saved = load_file(str(model.save(tmp_path / "none") / "fewshot.safetensors"))
    assert not [name for name in saved if name.startswith("memory")]
    assert not fit(labelled, pool, pool_memory=False).self_training["pool_memory_offered"]


def test_kinds_that_cannot_use_unlabelled_products_refuse_them(tmp_path):
    labelled, pool, _, _ = bridged_corpus()
    with pytest.raises(ConfigError, match="cannot learn from unlabelled"):
        train_model(
            [t for t, _ in labelled] * 3,
            [c for _, c in labelled] * 3,
            from_labels(CLASSES),
            tmp_path / "m",
            kind="linear",
            unlabelled=pool,
        )


def write_csv(path: Path, rows: list[dict[str, str]], fields: list[str]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_cli_trains_fewshot_with_an_unlabelled_file(tiny_rows, tmp_path):
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in tiny_rows:
        by_label.setdefault(row["category"], []).append(row)
    fields = ["id", "title", "category"]
    labelled = write_csv(
        tmp_path / "labelled.csv", [r for rows in by_label.values() for r in rows[:3]], fields
    )
    # the rest of the catalogue, its category column left in (it is ignored)
    pool = write_csv(
        tmp_path / "pool.csv", [r for rows in by_label.values() for r in rows[3:]], fields
    )
    out = tmp_path / "model"
    runner = CliRunner()
    args = ["train", str(labelled), "--kind", "fewshot", "--encoder", "fake"]
    result = runner.invoke(app, [*args, "--unlabelled", str(pool), "-o", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["unlabelled_rows"] == len(tiny_rows) - len(by_label) * 3
    assert manifest["self_training"]["unlabelled_rows"] > 0
    assert {"share", "prior_shift", "candidates", "class_mix"} <= set(manifest["self_training"])
    # in a model store the pool is part of the version's recorded data
    store = tmp_path / "store"
    result = runner.invoke(
        app, [*args, "--unlabelled", str(pool), "--store", str(store), "--name", "shop"]
    )
    assert result.exit_code == 0, result.output
    stored = json.loads(next(store.glob("shop/versions/*/manifest.json")).read_text("utf-8"))
    record = stored["store"]
    assert record["training_data"]["unlabelled"] == str(pool.resolve())
    assert record["data_digest"] == file_digest([labelled, pool])
    # a preset's kind cannot use them: a clear error before anything is read
    result = runner.invoke(
        app, ["train", str(labelled), "--unlabelled", str(pool), "-o", str(tmp_path / "m2")]
    )
    assert result.exit_code == 1 and "cannot learn from unlabelled" in result.output
    # a bad row is named by file, line and field; --strict makes it an error
    bad = write_csv(
        tmp_path / "bad.csv",
        [{"id": "1", "title": "red shirt"}, {"id": "2", "title": "  "}],
        ["id", "title"],
    )
    result = runner.invoke(
        app, [*args, "--unlabelled", str(bad), "--strict", "-o", str(tmp_path / "m3")]
    )
    assert result.exit_code == 1
    assert "bad.csv" in result.output and "line 3" in result.output
    assert "title" in result.output


def test_unlabelled_file_errors_name_the_file_and_field(tmp_path):
    from taxonomist.data import ColumnSpec

    no_text = write_csv(tmp_path / "no_text.csv", [{"id": "1", "name": "x"}], ["id", "name"])
    with pytest.raises(DataError, match="text columns") as error:
        read_unlabelled(no_text, ColumnSpec())
    assert "no_text.csv" in str(error.value)
    empty = write_csv(tmp_path / "empty.csv", [{"id": "1", "title": ""}], ["id", "title"])
    with pytest.raises(DataError, match="no usable unlabelled rows"):
        read_unlabelled(empty, ColumnSpec())
    texts, report = read_unlabelled(
        write_csv(
            tmp_path / "ok.csv",
            [{"id": "1", "title": "red shirt", "category": "not a category"}],
            ["id", "title", "category"],
        ),
        ColumnSpec(),
    )
    assert texts == ["red shirt"] and not report.bad_rows


def test_choose_encoder_takes_the_lowest_brier_score_and_a_tie_stays_with_the_default():
    from taxonomist.models.fewshot import choose_encoder

    def row(accuracy, brier):
        return {"cv_accuracy_self_trained": accuracy, "cv_brier_self_trained": brier}

    assert choose_encoder({"minilm": row(0.88, 0.54), "use": row(0.91, 0.44)}) == "use"
    # one out-of-fold error more no longer outvotes a lower Brier score
    assert choose_encoder({"minilm": row(0.88, 0.54), "use": row(0.87, 0.30)}) == "use"
    assert choose_encoder({"minilm": row(0.88, 0.44), "use": row(0.91, 0.54)}) == "minilm"
    assert choose_encoder({"minilm": row(0.88, 0.54), "use": row(0.90, 0.54)}) == "minilm"
    three = {"minilm": row(0.8, 0.6), "a": row(0.8, 0.4), "b": row(0.9, 0.4)}
    assert choose_encoder(three) == "a"  # a tie among the others: the earlier


def test_a_pool_fits_once_per_encoder_and_the_manifest_says_which_won(tmp_path, monkeypatch):
    import taxonomist.languages as languages

    # "fake" stands in for the English default here, "fake-64" for USE
    monkeypatch.setattr(languages, "ENGLISH_DEFAULTS", frozenset({"fake"}))
    labelled, pool, test, _ = bridged_corpus()
    cls = model_class("fewshot")
    config = cls.config_class.from_dict({"encoder": "fake", "other_encoders": ["fake-64"]})
    model = cls(from_labels(CLASSES), config)
    model.fit([t for t, _ in labelled], [c for _, c in labelled], unlabelled=pool)
    choice = model.self_training["encoder_choice"]
    assert set(choice["candidates"]) == {"fake", "fake-64"}
    from taxonomist.models.fewshot import choose_encoder

    assert choice["chosen"] == choose_encoder(choice["candidates"]) == model.config.encoder
    assert model.encoder.dim == (64 if choice["chosen"] == "fake-64" else 256)
    assert model._shared_pool_rows is None  # the shared n-grams are not kept
    path = model.save(tmp_path / "m")
    loaded = load_model(path)
    probe = [t for t, _ in test]
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-5)
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    assert manifest["self_training"]["encoder_choice"]["chosen"] == choice["chosen"]
    # an encoder the user named is kept: no second fit
    named = cls(from_labels(CLASSES), cls.config_class.from_dict({"encoder": "fake-64"}))
    named.fit([t for t, _ in labelled], [c for _, c in labelled], unlabelled=pool)
    assert "encoder_choice" not in named.self_training
