"""REST API v1: classify, models, taxonomies."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ..data.readers import Product
from ..errors import DataError, TaxonomistError, TaxonomyError
from ..predictions import (
    Candidate,
    Predictions,
    ProductPrediction,
    missing_language,
    primary_language,
)
from ..routing import route
from ..taxonomy import Category, Taxonomy
from .auth import require_scope
from .deps import registry, require_json
from .photos import photo_file
from .problems import ApiProblem
from .schemas import (
    EXPLAIN_NEIGHBOURS,
    MAX_EXPLAIN_PRODUCTS,
    MAX_EXPLAIN_WORDS,
    CandidateOut,
    CategoryDetail,
    CategoryList,
    CategoryOut,
    CategoryRef,
    ClassifyRequest,
    ClassifyResponse,
    ExplanationOut,
    LevelOut,
    ModelDetail,
    ModelList,
    ModelName,
    ModelRef,
    ModelSummary,
    NeighbourOut,
    ProductIn,
    ResultOut,
    TaxonomyList,
    TaxonomyRef,
    WordOut,
)
from .serving import ModelRegistry, Served

BUNDLED_TAXONOMIES = ("shopify", "google")

router = APIRouter(prefix="/v1", dependencies=[Depends(require_scope("classify"))])

Registry = Annotated[ModelRegistry, Depends(registry)]


# -- classify -------------------------------------------------------------------------------


def _records(
    products: list[ProductIn], served: Served, request: Request, directory: Path | None
) -> tuple[list[Product], list[list[str]]]:
    """Checked products for the classifier (by the same `validate_record` as file rows), and
    each one's warnings. Checked here, per request, so a bad product is named by its place
    in this request, not in a micro-batch shared with others."""
    from ..data.readers import ColumnSpec
    from ..data.records import validate_record

    allow = request.app.state.settings.allow_download
    reads_photos = bool(getattr(served.classifier, "uses_images", False))
    columns = getattr(served.classifier, "columns", None) or ColumnSpec()
    out, warnings = [], []
    for i, product in enumerate(products):
        notes: list[str] = []
        record: dict[str, Any] = {
            columns.id_column: product.id if product.id is not None else str(i + 1),
            "title": product.title,
            "description": product.description or "",
        }
        image = None
        if product.image:
            if not reads_photos:
                notes.append("this model does not read photos; classified from the text")
            else:
                assert directory is not None
                image, problem = photo_file(product.image, directory, str(i), allow_download=allow)
                if problem:
                    notes.append(f"{problem}; classified from the text")
        try:
            checked = validate_record(
                record, columns, text_columns=("title", "description"), source="request"
            )
        except DataError as exc:
            where = f"products[{i}].{exc.field}" if exc.field else f"products[{i}]"
            raise ApiProblem(
                422, f"{where}: {exc.reason}", errors=[{"field": where, "message": exc.reason}]
            ) from None
        out.append(replace(checked, line=i + 1, image=image))
        warnings.append(notes)
    return out, warnings


def candidate_out(candidate: Candidate, taxonomy: Taxonomy, language: str) -> CandidateOut:
    chain = taxonomy.ancestors(candidate.category_id)
    levels = [
        LevelOut(id=cat.id, name=cat.names.get(language, cat.name), confidence=float(conf))
        for cat, conf in zip(chain, candidate.level_confidences)
    ]
    return CandidateOut(
        category_id=candidate.category_id,
        path=[level.name for level in levels],
        confidence=float(candidate.confidence),
        levels=levels,
    )


def model_ref(served: Served, classifier: Any) -> ModelRef:
    ident = Served(served.name, classifier, served.path, None).identity
    return ModelRef(
        name=served.name,
        version=str(ident["version"]) if ident.get("version") else served.version,
        digest=ident.get("digest"),
        kind=ident.get("kind"),
    )


def results_out(
    preds: Predictions,
    taxonomy: Taxonomy,
    *,
    top_k: int,
    min_confidence: float | None,
    language: str,
    warnings: list[list[str]],
) -> list[ResultOut]:
    cut = preds.with_min_confidence(min_confidence, taxonomy) if min_confidence else preds
    out = []
    for full, answer, notes in zip(preds, cut, warnings):
        full_pred: ProductPrediction = full
        needs_review = bool(answer.needs_review or full_pred.needs_review)
        best = answer.candidates[0] if answer.candidates else None
        out.append(
            ResultOut(
                id=full_pred.product_id,
                category=candidate_out(best, taxonomy, language) if best else None,
                needs_review=needs_review,
                # the full-depth guess behind a backed-off answer (as the CLI's
                # suggested_category); a row flagged at full depth has nothing to suggest
                suggestion=candidate_out(full_pred.best, taxonomy, language)
                if needs_review
                and full_pred.candidates
                and (best is None or best.category_id != full_pred.best.category_id)
                else None,
                alternatives=[
                    candidate_out(c, taxonomy, language) for c in full_pred.candidates[1:top_k]
                ],
                warnings=notes,
                explanation=None,
            )
        )
    return out


@router.post(
    "/models/{name}/classify",
    response_model=ClassifyResponse,
    dependencies=[Depends(require_json)],
    summary="Classify one product or a batch (up to 256; up to 32 with explain)",
)
async def classify(
    name: ModelName, body: ClassifyRequest, request: Request, models: Registry
) -> Response:
    served = models.get(name)
    products = body.items
    if body.explain:
        check_explainable(products, served, name)

    async def work(directory: Path | None) -> tuple[Any, Any, list[list[str]], list | None]:
        if directory is None:
            records, warnings = _records(products, served, request, None)
        else:
            records, warnings = await asyncio.to_thread(
                _records, products, served, request, directory
            )
        preds, classifier = await models.batcher(name).submit(records, body.language, body.top_k)
        explanations = None
        if body.explain:
            # by the classifier that answered (a promote may have swapped the model since),
            # while the request's photos still exist; not micro-batched: its cost is bounded
            explanations = await asyncio.to_thread(
                classifier.explain_products,
                records,
                neighbours=EXPLAIN_NEIGHBOURS,
                max_words=MAX_EXPLAIN_WORDS,
            )
            warnings = [
                [*w, *explain_notes(record.text, exp)]
                for w, record, exp in zip(warnings, records, explanations)
            ]
        return preds, classifier, warnings, explanations

    if any(p.image for p in products):
        # photos are decoded to a private folder that lives until the model has read them
        with tempfile.TemporaryDirectory(prefix="taxonomist-api-") as tmp:
            preds, classifier, warnings, explanations = await work(Path(tmp))
    else:
        preds, classifier, warnings, explanations = await work(None)
    routing = getattr(classifier.model, "routing", None)
    if body.min_confidence is None and routing is not None:
        # a trained model's per-category thresholds flag rows, as `classify` does on files
        preds = route(preds, routing)
    taxonomy = classifier.taxonomy
    missing = missing_language(taxonomy, body.language)
    if missing is not None:
        # as `Classifier.predict` does: the primary names, and a note saying so
        note = f"{missing}: the paths are in its primary names"
        warnings = [[*w, note] for w in warnings]
    results = results_out(
        preds,
        taxonomy,
        top_k=body.top_k,
        min_confidence=body.min_confidence,
        language=body.language,
        warnings=warnings,
    )
    if explanations is not None:
        for result, exp in zip(results, explanations):
            result.explanation = explanation_out(exp, taxonomy, body.language)
    out = ClassifyResponse(
        model=model_ref(served, classifier), language=body.language, results=results
    )
    # already validated by construction: answering with bytes skips FastAPI's second pass
    return Response(
        out.model_dump_json(),
        media_type="application/json",
        headers={"Content-Language": primary_language(taxonomy) if missing else body.language},
    )


def check_explainable(products: list[ProductIn], served: Served, name: str) -> None:
    """A caller's explain request that cannot be met is refused before any model work."""
    if len(products) > MAX_EXPLAIN_PRODUCTS:
        message = (
            f"explain: true takes at most {MAX_EXPLAIN_PRODUCTS} products per request, got "
            f"{len(products)}; send them in smaller requests"
        )
        raise ApiProblem(422, message, errors=[{"field": "products", "message": message}])
    if getattr(served.classifier, "model", None) is None:
        message = f"model '{name}' is zero-shot: explanations need a trained model"
        raise ApiProblem(422, message, errors=[{"field": "explain", "message": message}])


def explain_notes(text: str, explanation: Any) -> list[str]:
    words = len(text.split())
    if explanation.method == "occlusion" and words > MAX_EXPLAIN_WORDS:
        return [
            f"the explanation weighs the first {MAX_EXPLAIN_WORDS} of {words} words "
            "(occlusion costs one model call per word)"
        ]
    return []


def _names(taxonomy: Taxonomy, category_id: str, language: str) -> list[str]:
    if category_id not in taxonomy:
        return [category_id]
    return [c.names.get(language, c.name) for c in taxonomy.ancestors(category_id)]


def explanation_out(explanation: Any, taxonomy: Taxonomy, language: str) -> ExplanationOut:
    """The core `Explanation` with paths as name lists in the asked language."""
    return ExplanationOut(
        category_id=explanation.category,
        path=_names(taxonomy, explanation.category, language),
        probability=float(explanation.probability),
        method=explanation.method,
        words=[
            WordOut(word=w.word, position=w.position, weight=w.weight) for w in explanation.words
        ],
        neighbours=[
            NeighbourOut(
                id=str(nb["id"]),
                title=str(nb["title"]),
                category_id=str(nb["category_id"]),
                path=_names(taxonomy, str(nb["category_id"]), language),
                similarity=float(nb["similarity"]),
            )
            for nb in explanation.neighbours
        ],
        image_heatmap=explanation.image_heatmap,
    )


# -- models ---------------------------------------------------------------------------------


def taxonomy_ref(taxonomy: Taxonomy) -> TaxonomyRef:
    return TaxonomyRef(
        name=taxonomy.name,
        version=taxonomy.version,
        categories=len(taxonomy),
        languages=taxonomy.languages,
    )


def summary(models: ModelRegistry, name: str) -> dict[str, Any]:
    if not models.is_served(name):
        return {"name": name, "ready": False}
    served = models.get(name)
    ident = served.identity
    return {
        "name": name,
        "ready": True,
        "version": served.version,
        "digest": ident.get("digest"),
        "kind": ident.get("kind"),
        "uses_images": bool(getattr(served.classifier, "uses_images", False)),
        "taxonomy": taxonomy_ref(served.classifier.taxonomy),
        "load_seconds": served.load_seconds,
    }


@router.get("/models", response_model=ModelList, summary="The served models")
async def list_models(models: Registry) -> ModelList:
    return ModelList(models=[ModelSummary(**summary(models, n)) for n in models.names()])


@router.get("/models/{name}", response_model=ModelDetail, summary="One model: manifest summary")
async def show_model(name: ModelName, models: Registry) -> ModelDetail:
    served = models.get(name)
    detail = summary(models, name)
    directory = served.path or getattr(served.classifier, "source", None)
    if directory is not None:
        from ..persistence import read_manifest

        try:
            manifest = await asyncio.to_thread(read_manifest, directory)
        except TaxonomistError:
            manifest = {}
        training = manifest.get("training") or {}
        metrics = manifest.get("metrics") or training.get("valid_metrics") or {}
        detail["valid_metrics"] = {
            k: float(v) for k, v in metrics.items() if isinstance(v, int | float)
        }
        detail["created_at"] = manifest.get("created_at")
        parent = manifest.get("parent") or (manifest.get("store") or {}).get("parent")
        detail["parent"] = str(parent) if parent else None
    if models.store is not None and name in models.store.names():
        versions = await asyncio.to_thread(models.store.versions, name)
        detail["versions"] = [_version_id(v) for v in versions]
    return ModelDetail(**detail)


def _version_id(version: Any) -> str:
    for attr in ("id", "version", "version_id", "name"):
        value = getattr(version, attr, None)
        if isinstance(value, str):
            return value
    if isinstance(version, dict):
        return str(version.get("id") or version.get("version"))
    return str(version)


# -- taxonomies -----------------------------------------------------------------------------


async def find_taxonomy(request: Request, name: str) -> Taxonomy:
    """A served model's taxonomy by its name, or a bundled one (loaded once, on first use)."""
    models: ModelRegistry = request.app.state.registry
    for model_name in models.names():
        if models.is_served(model_name):
            taxonomy = models.get(model_name).classifier.taxonomy
            if taxonomy.name == name:
                return taxonomy
    cache: dict[str, Taxonomy] = request.app.state.taxonomies
    if name in BUNDLED_TAXONOMIES:
        if name not in cache:
            from ..taxonomy_loaders import load_taxonomy

            cache[name] = await asyncio.to_thread(load_taxonomy, name)
        return cache[name]
    known = sorted({t.name for t in _served_taxonomies(models)} | set(BUNDLED_TAXONOMIES))
    raise ApiProblem(404, f"no taxonomy named '{name}'; known: {', '.join(known)}")


def _served_taxonomies(models: ModelRegistry) -> list[Taxonomy]:
    return [models.get(n).classifier.taxonomy for n in models.names() if models.is_served(n)]


def category_out(category: Category, language: str | None) -> CategoryOut:
    return CategoryOut(
        id=category.id,
        name=category.names.get(language, category.name) if language else category.name,
        path=list(category.path),
        depth=category.depth,
        is_leaf=category.is_leaf,
        parent_id=category.parent_id,
    )


def _ref(category: Category, language: str | None) -> CategoryRef:
    name = category.names.get(language, category.name) if language else category.name
    return CategoryRef(id=category.id, name=name, is_leaf=category.is_leaf)


@router.get("/taxonomies", response_model=TaxonomyList, summary="Taxonomies to browse")
async def list_taxonomies(models: Registry) -> TaxonomyList:
    seen: dict[str, TaxonomyRef] = {}
    for taxonomy in _served_taxonomies(models):
        seen.setdefault(taxonomy.name, taxonomy_ref(taxonomy))
    return TaxonomyList(taxonomies=list(seen.values()))


@router.get(
    "/taxonomies/{name}/categories",
    response_model=CategoryList,
    summary="Search categories (q), or list the top level",
)
async def search_categories(
    name: ModelName,
    request: Request,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    language: Annotated[str | None, Query(pattern="^(en|zh)$")] = None,
) -> CategoryList:
    taxonomy = await find_taxonomy(request, name)
    if q is not None and q.strip():
        found = await asyncio.to_thread(taxonomy.search, q, limit=limit)
    else:
        found = taxonomy.roots[:limit]
    return CategoryList(
        taxonomy=taxonomy.name, query=q, results=[category_out(c, language) for c in found]
    )


@router.get(
    "/taxonomies/{name}/categories/{category_id:path}",
    response_model=CategoryDetail,
    summary="One category: path, names per language, children",
)
async def show_category(
    name: ModelName,
    category_id: str,
    request: Request,
    language: Annotated[str | None, Query(pattern="^(en|zh)$")] = None,
) -> CategoryDetail:
    taxonomy = await find_taxonomy(request, name)
    try:
        category = taxonomy.get(category_id)
    except TaxonomyError as exc:
        raise ApiProblem(404, str(exc)) from None
    base = category_out(category, language)
    return CategoryDetail(
        **base.model_dump(),
        names=dict(category.names),
        ancestors=[_ref(c, language) for c in taxonomy.ancestors(category.id, include_self=False)],
        children=[_ref(c, language) for c in taxonomy.children(category.id)],
    )
