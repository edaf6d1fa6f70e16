"""The REST API's explanations (`explain: true`), its back-off suggestion, and the Chinese
names rule it shares with `Classifier.predict`: in-process (TestClient) over models on the
tiny corpus (linear and knn: TF-IDF, no encoder; a photo model on the fake encoder)."""

from __future__ import annotations

import base64
import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from api_support import CORPORA, MODEL_NAME, tiny_model_dir, wait_ready  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from taxonomist.api import ApiSettings, create_app  # noqa: E402
from taxonomist.api.schemas import MAX_EXPLAIN_PRODUCTS, MAX_EXPLAIN_WORDS  # noqa: E402
from taxonomist.classifier import load_classifier  # noqa: E402
from taxonomist.errors import ConfigError  # noqa: E402

CLASSIFY = "/v1/models/{}/classify"
PROBLEM = "application/problem+json"
IMAGES = CORPORA / "fashion_tiny_images.csv"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def knn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from taxonomist import service

    target = tmp_path_factory.mktemp("knn") / "knn"
    service.train_file(CORPORA / "fashion_tiny.csv", target, preset="fast", kind="knn", refit=False)
    return target


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An `image` model on the fake image encoder (a second to train)."""
    from taxonomist.items import Item
    from taxonomist.models import model_class
    from taxonomist.taxonomy_loaders import from_labels

    with open(IMAGES, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:40]
    tax = from_labels(r["category"] for r in rows)
    cls = model_class("image")
    config = {"encoder": "fake", "epochs": 10, "hidden": 0, "batch_size": 8, "lr": 0.01}
    model = cls(tax, cls.config_class.from_dict(config))
    model.fit(
        [Item(r["title"], str(IMAGES.parent / r["image"])) for r in rows],
        [tax.by_path(r["category"]).id for r in rows],
    )
    return model.save(tmp_path_factory.mktemp("photo") / "photo")


@pytest.fixture(scope="module")
def client(model_dir: Path, knn_dir: Path, photo_dir: Path):
    app = create_app(ApiSettings(model=model_dir, open_access=True))
    with TestClient(app) as c:
        wait_ready(c)
        registry = app.state.registry
        registry.serve("knn", load_classifier(knn_dir))
        registry.serve("photo", load_classifier(photo_dir))
        registry.serve("zs", load_classifier(taxonomy=load_classifier(model_dir).taxonomy,
                                             encoder="fake"))  # fmt: skip
        yield c


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def test_explain_gives_the_cli_explanation(client: TestClient, model_dir: Path) -> None:
    from taxonomist.analysis.explain import explain

    title = "Nike Men Running Shoes"
    body = {"product": {"title": title}, "explain": True}
    r = client.post(CLASSIFY.format(MODEL_NAME), json=body)
    assert r.status_code == 200, r.text
    exp = r.json()["results"][0]["explanation"]
    # the same numbers `classify --explain` writes (one core), paths as name lists
    [cli] = explain(model_dir, [title])
    assert exp["method"] == "linear-exact" == cli.method
    assert exp["category_id"] == cli.category and exp["path"] == cli.path.split(" > ")
    assert [w["word"] for w in exp["words"]] == [w.word for w in cli.words]
    assert np.allclose([w["weight"] for w in exp["words"]], [w.weight for w in cli.words])
    assert sorted(w["position"] for w in exp["words"]) == list(range(4))
    assert len(exp["neighbours"]) == 3
    near = exp["neighbours"][0]
    assert near["id"] and near["title"] and near["path"][0] and 0 < near["similarity"] <= 1
    assert near["category_id"] == cli.neighbours[0]["category_id"]
    assert exp["image_heatmap"] is None
    # without explain: no explanation, and none computed
    plain = client.post(CLASSIFY.format(MODEL_NAME), json={"product": {"title": title}})
    assert plain.json()["results"][0]["explanation"] is None


def test_explain_is_bounded(client: TestClient) -> None:
    products = [{"title": f"red shoe {i}"} for i in range(MAX_EXPLAIN_PRODUCTS + 1)]
    r = client.post(CLASSIFY.format(MODEL_NAME), json={"products": products, "explain": True})
    body = _problem(r, 422)
    assert f"at most {MAX_EXPLAIN_PRODUCTS} products" in body["detail"]
    assert body["errors"][0]["field"] == "products"
    # the cap is in the schema too, where clients (and schemathesis) see it
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ClassifyRequest"]
    assert schema["then"]["properties"]["products"]["maxItems"] == MAX_EXPLAIN_PRODUCTS
    r = client.post(CLASSIFY.format(MODEL_NAME), json={"products": products[:-1], "explain": True})
    assert r.status_code == 200 and all(x["explanation"] for x in r.json()["results"])
    # the same products without explain are fine
    assert client.post(CLASSIFY.format(MODEL_NAME), json={"products": products}).status_code == 200


def test_explain_needs_a_trained_model(client: TestClient) -> None:
    r = client.post(CLASSIFY.format("zs"), json={"product": {"title": "bag"}, "explain": True})
    assert "zero-shot" in _problem(r, 422)["detail"]
    with pytest.raises(ConfigError, match="zero-shot"):
        client.app.state.registry.get("zs").classifier.explain(["bag"])


def test_occlusion_weighs_the_leading_words_of_a_long_text(client: TestClient) -> None:
    description = " ".join(f"word{i}" for i in range(100))
    body = {"product": {"title": "Leather Handbag", "description": description}, "explain": True}
    r = client.post(CLASSIFY.format("knn"), json=body)
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    exp = result["explanation"]
    assert exp["method"] == "occlusion" and len(exp["words"]) == MAX_EXPLAIN_WORDS
    assert f"first {MAX_EXPLAIN_WORDS} of 102 words" in result["warnings"][-1]
    # title and description are read as "title. description"
    top = exp["words"][0]
    assert top["word"].strip(".") in {"Leather", "Handbag"} and top["weight"] > 0
    assert len(exp["neighbours"]) == 3


def test_explain_gives_a_photo_heat_map(client: TestClient) -> None:
    with open(IMAGES, encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    photo = base64.b64encode((IMAGES.parent / row["image"]).read_bytes()).decode()
    body = {"product": {"title": row["title"], "image": photo}, "explain": True}
    r = client.post(CLASSIFY.format("photo"), json=body)
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["warnings"] == []
    heat = np.array(result["explanation"]["image_heatmap"])
    assert heat.shape == (4, 4) and np.abs(heat).sum() > 0
    # no photo sent: no heat map
    r = client.post(CLASSIFY.format("photo"), json={**body, "product": {"title": row["title"]}})
    assert r.json()["results"][0]["explanation"]["image_heatmap"] is None


def test_backed_off_rows_carry_the_classifiers_suggestion(
    client: TestClient, model_dir: Path
) -> None:
    titles = ["blue", "Nike Men Running Shoes", "leather", "watch strap"]
    body = {"products": [{"title": t} for t in titles], "min_confidence": 0.9, "top_k": 2}
    results = client.post(CLASSIFY.format(MODEL_NAME), json=body).json()["results"]
    preds = load_classifier(model_dir).predict(titles, top_k=2, min_confidence=0.9)
    backed_off = 0
    for result, pred in zip(results, preds):
        assert result["needs_review"] == pred.needs_review
        assert result["category"]["category_id"] == pred.best.category_id
        if pred.suggested is None:
            assert result["suggestion"] is None
            continue
        backed_off += 1
        # the CLI's suggested_category / suggested_confidence, with the id and levels
        got = result["suggestion"]
        assert got["category_id"] == pred.suggested.category_id
        assert " > ".join(got["path"]) == pred.suggested.path_str
        assert got["confidence"] == pytest.approx(pred.suggested.confidence)
        assert len(got["path"]) > len(result["category"]["path"])
    assert backed_off >= 1


def test_chinese_for_an_english_taxonomy_agrees_with_the_classifier(
    client: TestClient, model_dir: Path
) -> None:
    title = "Nike Men Running Shoes"
    r = client.post(CLASSIFY.format(MODEL_NAME), json={"product": {"title": title},
                                                        "language": "zh"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-language"] == "en"
    result = r.json()["results"][0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preds = load_classifier(model_dir).predict([title], language="zh")
    # the same English path and the same note, from both
    assert tuple(result["category"]["path"]) == preds[0].best.path
    assert result["warnings"] == preds.warnings
    assert "no names in language 'zh'" in preds.warnings[0]
    assert [str(w.message) for w in caught] == preds.warnings
    english = client.post(CLASSIFY.format(MODEL_NAME), json={"product": {"title": title}})
    assert english.headers["content-language"] == "en"
    assert english.json()["results"][0]["warnings"] == []
    # the Open Inference Protocol route answers alike; its header says which names came back
    tensor = {"name": "text", "datatype": "BYTES", "shape": [1], "data": [title]}
    body = {"inputs": [tensor], "parameters": {"language": "zh"}}
    r = client.post(f"/v2/models/{MODEL_NAME}/infer", json=body)
    assert r.status_code == 200 and r.headers["content-language"] == "en"
    assert r.json()["outputs"][0]["data"] == [preds[0].best.path_str]


def test_routing_keeps_the_batchs_identity_and_notes(model_dir: Path) -> None:
    from taxonomist.routing import route

    clf = load_classifier(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        preds = clf.predict(["leather handbag"], language="zh")
    routed = route(preds, clf.model.routing)
    assert routed.model == clf.identity and routed.warnings == preds.warnings


def test_a_batch_job_still_refuses_chinese_up_front(model_dir: Path) -> None:
    from taxonomist.batch.job import JobSpec, load

    with pytest.raises(ConfigError, match="no names in language 'zh'"):
        load(JobSpec(model=model_dir, language="zh"))


def test_review_item_explanation(tmp_path: Path, model_dir: Path, tiny_taxonomy) -> None:
    pytest.importorskip("sqlalchemy")
    from taxonomist.api.review_routes import review_router
    from taxonomist.review import QueueEntry, ReviewStore

    leaf = next(c for c in tiny_taxonomy if c.is_leaf)
    suggestion = [{"category_id": leaf.id, "path": leaf.path_str, "confidence": 0.4}]
    store = ReviewStore(tmp_path / "review.sqlite", tiny_taxonomy)
    store.enqueue(
        [
            QueueEntry("p1", suggestion, "v1", title="Leather Handbag", model_name=MODEL_NAME),
            QueueEntry("p2", suggestion, "v1", title="Leather Handbag", model_name="retired"),
        ]
    )
    app = create_app(
        ApiSettings(model=model_dir, open_access=True, web=False), routers=[review_router(store)]
    )
    try:
        with TestClient(app) as c:
            wait_ready(c)
            ids = {i["product_id"]: i["id"] for i in c.get("/review/items").json()["items"]}
            r = c.get(f"/review/items/{ids['p1']}/explanation")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"]["name"] == MODEL_NAME and body["queued_by_version"] == "v1"
            exp = body["explanation"]
            assert {w["word"] for w in exp["words"]} == {"Leather", "Handbag"}
            assert len(exp["neighbours"]) == 3 and exp["neighbours"][0]["path"]
            # queued by a model no longer served: the only served model explains it
            assert c.get(f"/review/items/{ids['p2']}/explanation").status_code == 200
            app.state.registry.serve("knn", load_classifier(model_dir))
            r = c.get(f"/review/items/{ids['p2']}/explanation")
            assert "does not serve" in _problem(r, 404)["detail"]
            assert _problem(c.get("/review/items/999/explanation"), 404)
    finally:
        store.close()
