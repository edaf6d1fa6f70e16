"""`load_classifier` / `Classifier`: the one object the CLI, API and batch jobs hold."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from taxonomist.classifier import Classifier, load_classifier
from taxonomist.errors import ConfigError, DataError
from taxonomist.service import train_file


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """linear + head (fake encoder) + knn, pooled: every lazy path a served model has."""
    import os

    from tests.conftest import CORPORA

    os.environ.setdefault("TAXONOMIST_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("models") / "balanced"
    train_file(
        CORPORA / "fashion_tiny.csv",
        out,
        preset="balanced",
        overrides={"encoder": "fake", "epochs": 3},
    )
    return out


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen-encoder head alone (the pooled model may weigh its head at 0 on tiny data)."""
    from tests.conftest import CORPORA

    out = tmp_path_factory.mktemp("models") / "head"
    train_file(
        CORPORA / "fashion_tiny.csv", out, kind="head", overrides={"encoder": "fake", "epochs": 3}
    )
    return out


def test_trained_classifier_predicts_records_with_identity(ensemble_dir: Path) -> None:
    clf = load_classifier(ensemble_dir)
    preds = clf.predict(
        [{"id": "a", "title": "blue denim jeans"}, "leather wallet", {"title": "red shirt"}],
        top_k=2,
        return_proba=True,
    )
    assert [p.product_id for p in preds] == ["a", "1", "2"]
    assert all(len(p.candidates) == 2 for p in preds)
    assert preds.model == clf.identity
    assert clf.identity.kind == "ensemble" and clf.identity.digest
    assert clf.identity.version and clf.identity.version.endswith(clf.identity.digest[:8])
    assert preds.proba.shape == (3, len(preds.labels))
    np.testing.assert_allclose(preds.proba.sum(1), 1.0, rtol=1e-5)


def test_bad_record_names_its_position_and_field(ensemble_dir: Path) -> None:
    clf = load_classifier(ensemble_dir)
    with pytest.raises(DataError, match=r"record: line 2: field 'title': empty text"):
        clf.predict([{"title": "jeans"}, {"id": "x", "title": "   "}])
    with pytest.raises(DataError, match="field 'title': expected text, got list"):
        clf.predict([{"id": "x", "title": ["a"]}])
    with pytest.raises(DataError, match="top-k"):
        clf.predict(["jeans"], top_k=0)
    with pytest.raises(DataError, match="language"):
        clf.predict(["jeans"], language="fr")


def test_model_taxonomy_cannot_be_swapped(ensemble_dir: Path) -> None:
    with pytest.raises(ConfigError, match="its own taxonomy"):
        load_classifier(ensemble_dir, taxonomy="google")


@pytest.mark.parametrize("which", ["ensemble_dir", "head_dir"])
def test_threads_share_one_classifier(which: str, request: pytest.FixtureRequest) -> None:
    """8 threads for a few seconds give the same predictions as one thread, with no error."""
    model_dir = request.getfixturevalue(which)
    clf = load_classifier(model_dir)  # not warmed: the lazy loads race too
    texts = [f"{c} {n}" for n in range(40) for c in ("blue jeans", "red shirt", "watch")][:60]
    expected = load_classifier(model_dir).predict(texts, top_k=3)
    errors: list[BaseException] = []
    mismatches = 0
    lock = threading.Lock()
    stop = time.monotonic() + 3.0

    def work(seed: int) -> None:
        nonlocal mismatches
        rng = np.random.default_rng(seed)
        try:
            while time.monotonic() < stop:
                idx = rng.choice(len(texts), size=int(rng.integers(1, 20)), replace=False)
                preds = clf.predict([texts[i] for i in idx], top_k=3)
                for i, pred in zip(idx, preds):
                    want = expected[int(i)]
                    same = [c.category_id for c in pred.candidates] == [
                        c.category_id for c in want.candidates
                    ] and np.allclose(
                        [c.confidence for c in pred.candidates],
                        [c.confidence for c in want.candidates],
                        atol=1e-6,
                    )
                    if not same:
                        with lock:
                            mismatches += 1
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert mismatches == 0


def test_zero_shot_classifier_adapts_into_a_new_one(tiny_taxonomy) -> None:
    clf = load_classifier(taxonomy=tiny_taxonomy, encoder="fake")
    assert clf.identity.kind == "zero-shot"
    before = clf.predict(["blue denim jeans"], return_proba=True)
    adapted = clf.adapt(["blue denim jeans", "white cotton shirt", "steel watch"] * 5)
    assert isinstance(adapted, Classifier) and adapted is not clf
    assert adapted.identity.version != clf.identity.version
    again = clf.predict(["blue denim jeans"], return_proba=True)
    np.testing.assert_array_equal(before.proba, again.proba)  # the original is untouched


def test_language_zh_writes_chinese_paths() -> None:
    from taxonomist.taxonomy import Node, Taxonomy

    tax = Taxonomy(
        [
            Node("el", None, {"en": "Electronics", "zh": "电子产品"}),
            Node("ph", "el", {"en": "Phones", "zh": "手机"}),
            Node("ap", None, {"en": "Apparel", "zh": "服装"}),
            Node("sh", "ap", {"en": "Shirts", "zh": "衬衫"}),
        ],
        name="mini",
    )
    clf = load_classifier(taxonomy=tax, encoder="fake")
    pred = clf.predict(["phone"], language="zh")[0].best
    english = clf.predict(["phone"])[0].best
    assert pred.category_id == english.category_id
    assert set(pred.path) <= {"电子产品", "手机", "服装", "衬衫"}


def test_embedding_cache_is_safe_across_threads(tmp_path: Path) -> None:
    from taxonomist.encoders import CachedEncoder, EmbeddingCache, FakeEncoder

    encoder = CachedEncoder(FakeEncoder(), EmbeddingCache(tmp_path))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                encoder.encode([f"text {n} {i}", f"shared {i}"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_unusable_cache_folder_turns_caching_off(tmp_path: Path, head_dir: Path) -> None:
    # a folder that cannot be created (under a plain file) stands in for a read-only home:
    # root can write anywhere, but not below a file
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    clf = load_classifier(head_dir, cache_dir=blocker / "cache")
    assert clf.predict(["blue jeans"])[0].best.category_id


def test_cache_settings_reach_the_encoders(tmp_path: Path, head_dir: Path) -> None:
    clf = load_classifier(head_dir, cache_dir=tmp_path / "mine")
    clf.predict(["blue jeans"])
    assert (tmp_path / "mine" / "embeddings.sqlite").exists()
    off = load_classifier(head_dir, cache_dir=tmp_path / "off", use_cache=False)
    off.predict(["blue jeans"])
    assert not (tmp_path / "off").exists()
