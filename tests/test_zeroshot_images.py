"""Zero-shot image scoring: the ImageNet bridge, the learned image-text alignment, and how
the zero-shot classifier pools image scores with text scores. Fake encoders only (no
network weights): the tiny corpus's real photos through the 8x8 thumbnail encoder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from taxonomist.encoders import FakeEncoder, build_encoder_set
from taxonomist.encoders.image import FakeImageEncoder
from taxonomist.errors import DataError, ModelError
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.zeroshot import ZeroShotClassifier
from taxonomist.zeroshot_images import AlignmentConfig, ImageNetBridge, ImageTextAlignment

CORPUS = Path(__file__).parent / "corpora" / "fashion_tiny_images.csv"
EPOCHS = 8


def _rows() -> list[dict[str, str]]:
    with open(CORPUS, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _image(row: dict[str, str]) -> str:
    return str(CORPUS.parent / row["image"])


def _config(**changes) -> AlignmentConfig:
    base = dict(text_encoder="fake", image_encoder="fake", epochs=EPOCHS, batch_size=32)
    return AlignmentConfig(**{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return _rows()


@pytest.fixture(scope="module")
def alignment(tmp_path_factory: pytest.TempPathFactory, rows) -> ImageTextAlignment:
    # module-scoped, so set the isolated cache here too (the autouse fixture is per test)
    import torch

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        # tiny matrices: one thread, or a busy machine makes a 0.2 s fit take seconds
        torch.set_num_threads(1)
        try:
            model = ImageTextAlignment(_config())
            model.fit([_image(r) for r in rows], [r["title"] for r in rows])
        finally:
            torch.set_num_threads(threads)
        return model


@pytest.fixture
def category_texts(rows) -> list[list[str]]:
    paths = sorted({r["category"] for r in rows})
    return [[p.split(" > ")[-1] for p in paths], paths]


@pytest.fixture
def zero_shot(rows) -> ZeroShotClassifier:
    taxonomy = from_labels(r["category"] for r in rows)
    return ZeroShotClassifier(taxonomy, build_encoder_set("fake"))


def _assert_log_probs(logp: np.ndarray, n: int, c: int) -> None:
    assert logp.shape == (n, c)
    assert np.isfinite(logp).all() and (logp <= 1e-9).all()
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-6)


# -- the ImageNet bridge --------------------------------------------------------------------


def test_bridge_log_probs_are_normalised_and_mask_missing_photos(rows, category_texts) -> None:
    bridge = ImageNetBridge(FakeEncoder(), FakeImageEncoder())
    paths: list[str | None] = [_image(rows[0]), None, _image(rows[1]), _image(rows[2])]
    logp, ok = bridge.log_probs(paths, category_texts)
    _assert_log_probs(logp, len(paths), len(category_texts[0]))
    assert ok.tolist() == [True, False, True, True]
    # different photos score the categories differently
    assert not np.allclose(logp[0], logp[2])
    assert "ImageNet bridge" in bridge.describe


def test_bridge_top_classes_and_temperature_still_normalise(rows, category_texts) -> None:
    bridge = ImageNetBridge(FakeEncoder(), FakeImageEncoder(), top_classes=1, temperature=1.0)
    logp, ok = bridge.log_probs([_image(rows[3]), None], category_texts)
    _assert_log_probs(logp, 2, len(category_texts[0]))
    assert ok.tolist() == [True, False]


# -- the learned alignment ------------------------------------------------------------------


def test_alignment_training_loss_falls(alignment: ImageTextAlignment) -> None:
    history = alignment.history
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    losses = [h["train_loss"] for h in history]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0]
    # overall downward: the second half averages below the first
    half = len(losses) // 2
    assert np.mean(losses[half:]) < np.mean(losses[:half])
    # under 200 pairs nothing is held out, so no retrieval accuracy is reported
    assert "valid_retrieval_accuracy" not in history[-1]


def test_alignment_log_probs_shape_mask_and_normalisation(
    alignment: ImageTextAlignment, rows, category_texts
) -> None:
    paths: list[str | None] = [_image(r) for r in rows[:5]] + [None]
    logp, ok = alignment.log_probs(paths, category_texts)
    _assert_log_probs(logp, len(paths), len(category_texts[0]))
    assert ok.tolist() == [True] * 5 + [False]


def test_alignment_matches_photos_to_their_own_titles(alignment: ImageTextAlignment, rows) -> None:
    # trained on these very pairs: a photo should rank its own title first far above chance
    sample = rows[:40]
    logp, ok = alignment.log_probs([_image(r) for r in sample], [[r["title"] for r in sample]])
    assert ok.all()
    hits = np.mean(logp.argmax(1) == np.arange(len(sample)))
    assert hits > 5 / len(sample)


def test_alignment_save_load_round_trip(
    alignment: ImageTextAlignment, rows, category_texts, tmp_path: Path
) -> None:
    paths: list[str | None] = [_image(r) for r in rows[:6]] + [None]
    before, ok_before = alignment.log_probs(paths, category_texts)
    directory = alignment.save(tmp_path / "align")
    files = {p.name for p in directory.iterdir()}
    assert {"manifest.json", "alignment.safetensors"} <= files
    assert not list(directory.rglob("*.pkl"))
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "alignment"
    assert manifest["config"]["text_encoder"] == "fake"
    assert manifest["config"]["image_encoder"] == "fake"
    assert len(manifest["training"]["history"]) == EPOCHS
    loaded = ImageTextAlignment.load(directory)
    assert loaded.config == alignment.config
    assert loaded.history == alignment.history
    after, ok_after = loaded.log_probs(paths, category_texts)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    assert ok_after.tolist() == ok_before.tolist()


def test_loading_a_classifier_directory_as_an_alignment_fails(tmp_path: Path, rows) -> None:
    from taxonomist.models import model_class

    taxonomy = from_labels(r["category"] for r in rows)
    cls = model_class("linear")
    model = cls(taxonomy, cls.config_class())
    model.fit([r["title"] for r in rows], [taxonomy.by_path(r["category"]).id for r in rows])
    model.save(tmp_path / "linear")
    with pytest.raises(ModelError, match="'linear' model, not an image-text alignment"):
        ImageTextAlignment.load(tmp_path / "linear")
    with pytest.raises(ModelError, match="not found"):
        ImageTextAlignment.load(tmp_path / "absent")


def test_alignment_needs_two_usable_pairs(rows, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jpg")
    model = ImageTextAlignment(_config(epochs=1))
    with pytest.raises(DataError, match="at least two rows"):
        model.fit([_image(rows[0]), None, missing], ["a", "b", "c"])
    with pytest.raises(DataError, match="at least two rows"):
        model.fit([], [])
    with pytest.raises(DataError, match="2 images but 1 texts"):
        model.fit([_image(rows[0]), _image(rows[1])], ["only one"])


def test_untrained_alignment_refuses_to_score_or_save(tmp_path: Path, category_texts) -> None:
    model = ImageTextAlignment(_config())
    with pytest.raises(ModelError, match="not been trained"):
        model.log_probs([None], category_texts)
    with pytest.raises(ModelError, match="not been trained"):
        model.save(tmp_path / "a")
    assert not (tmp_path / "a").exists()


# -- pooling image and text scores in the zero-shot classifier ------------------------------


def _peaked(n: int, c: int, best: list[int]) -> np.ndarray:
    """Image log-probabilities that favour candidate best[i] for row i."""
    logits = np.zeros((n, c))
    logits[np.arange(n), best] = 6.0
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def test_image_only_row_follows_the_image_scores(zero_shot: ZeroShotClassifier, rows) -> None:
    c = len(zero_shot.tree.candidates)
    target = [3, c - 1]
    logp = _peaked(2, c, target)
    preds = zero_shot.predict(
        ["", ""], ["a", "b"], top_k=3, image_log_probs=(logp, np.array([True, True]))
    )
    for pred, j, row in zip(preds, target, logp):
        node = zero_shot.tree.candidates[j]
        assert pred.best.category_id == zero_shot.tree.ids[node]
        # the text of an empty row says nothing: the image's distribution is the answer
        assert pred.best.confidence == pytest.approx(float(np.exp(row[j])), rel=1e-6)


def test_image_only_row_with_alignment_scores(
    zero_shot: ZeroShotClassifier, alignment: ImageTextAlignment, rows
) -> None:
    paths = [_image(r) for r in rows[:4]]
    image_logp, ok = alignment.log_probs(paths, zero_shot.candidate_texts())
    preds = zero_shot.predict([""] * 4, image_log_probs=(image_logp, ok))
    expected = zero_shot.tree.candidates[image_logp.argmax(1)]
    assert [p.best.category_id for p in preds] == [zero_shot.tree.ids[n] for n in expected]


def test_text_row_without_image_equals_text_only_prediction(
    zero_shot: ZeroShotClassifier, rows
) -> None:
    texts = [r["title"] for r in rows[:6]]
    c = len(zero_shot.tree.candidates)
    # the image scores shout for one candidate, but no row has an image
    logp = _peaked(len(texts), c, [0] * len(texts))
    mixed = zero_shot.predict(
        texts, top_k=3, image_log_probs=(logp, np.zeros(len(texts), dtype=bool))
    )
    plain = zero_shot.predict(texts, top_k=3)
    for a, b in zip(mixed, plain):
        assert [x.category_id for x in a.candidates] == [x.category_id for x in b.candidates]
        np.testing.assert_allclose(
            [x.confidence for x in a.candidates], [x.confidence for x in b.candidates], rtol=1e-9
        )


def test_text_and_image_are_pooled(zero_shot: ZeroShotClassifier, rows) -> None:
    texts = [r["title"] for r in rows[:6]]
    c = len(zero_shot.tree.candidates)
    plain = zero_shot.candidate_log_probs(texts)
    target = [int(np.argmin(p)) for p in plain]  # the text's least likely candidate
    logp = _peaked(len(texts), c, target)
    has = np.ones(len(texts), dtype=bool)
    text_heavy = zero_shot.predict(texts, image_log_probs=(logp, has), image_weight=0.0)
    assert [p.best.category_id for p in text_heavy] == [
        p.best.category_id for p in zero_shot.predict(texts)
    ]
    image_heavy = zero_shot.predict(texts, image_log_probs=(logp, has), image_weight=1.0)
    assert [p.best.category_id for p in image_heavy] == [
        zero_shot.tree.ids[zero_shot.tree.candidates[j]] for j in target
    ]
    # in between, the image pulls the chosen candidate's probability up from the text's
    half = zero_shot.predict(texts, top_k=c, image_log_probs=(logp, has), image_weight=0.5)
    for i, pred in enumerate(half):
        wanted = zero_shot.tree.ids[zero_shot.tree.candidates[target[i]]]
        conf = {x.category_id: x.confidence for x in pred.candidates}[wanted]
        assert conf > np.exp(plain[i, target[i]])


def test_candidate_texts_line_up_with_candidates(zero_shot: ZeroShotClassifier) -> None:
    texts = zero_shot.candidate_texts()
    assert len(texts) == len(zero_shot.config.templates)
    assert all(len(column) == len(zero_shot.tree.candidates) for column in texts)
    names = [zero_shot.taxonomy.get(zero_shot.tree.ids[n]).name for n in zero_shot.tree.candidates]
    assert texts[0] == names
