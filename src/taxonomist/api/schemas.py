"""Request and response bodies of the REST API. Limits live here, so OpenAPI shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

MAX_PRODUCTS = 256
MAX_TITLE_CHARS = 4_000
MAX_DESCRIPTION_CHARS = 16_000  # with the title: 20,000 characters of text per product
MAX_ID_CHARS = 200
MAX_TOP_K = 20
# explanations cost many model calls per product (occlusion: one per word; a photo: 16 more),
# so a request asking for them is held to fewer products, and occlusion to the leading words
MAX_EXPLAIN_PRODUCTS = 32
MAX_EXPLAIN_WORDS = 64
EXPLAIN_NEIGHBOURS = 3

# What a photo may be: base64 data (bare or as a data: URI), or an http(s) URL that the server
# fetches only when started with --allow-download. A file path or file:// URL never matches:
# the server reads no file a caller names.
_BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
# printable ASCII only: a URL with other characters must be percent-encoded
IMAGE_PATTERN = rf"^(?:(?:data:image/[A-Za-z0-9.+-]+;base64,)?{_BASE64}|https?://[!-~]+)$"
# "has a visible character", the same in every regex dialect that reads the schema: \s
# differs between ECMA (clients, schemathesis) and Rust (pydantic) on U+001C-001F, U+0085
# and U+FEFF, and Python's str.strip (validation) removes all of them, so they are listed
VISIBLE = "[^\\s\x1c-\x1f\x85\ufeff]"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def _whole(value: object) -> object:
    # JSON Schema's "integer" includes 20.0; strict pydantic would refuse it
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole)]
Language = Literal["en", "zh"]
ModelName = Annotated[str, Field(pattern=NAME_PATTERN, description="A served model's name.")]


class _Strict(BaseModel):
    # strict: what the schema says is what is accepted (no "3" for 3, no false for 0.0)
    model_config = ConfigDict(extra="forbid", strict=True)


class ProductIn(_Strict):
    """One product: a title, optionally a description and a photo."""

    id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=VISIBLE,
        description="Your id for the product; default: its position in the request (1, 2...).",
    )
    title: str = Field(
        ..., min_length=1, max_length=MAX_TITLE_CHARS, pattern=VISIBLE, examples=["iPhone 15 128GB"]
    )
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_CHARS)
    image: str | None = Field(
        None,
        pattern=IMAGE_PATTERN,
        description="A photo as base64 (or a data:image/...;base64, URI), or an http(s) URL "
        "when the server allows downloads. A bad photo is reported in `warnings` and the "
        "product is classified from its text.",
    )


class _Options(_Strict):
    top_k: WholeNumber = Field(3, ge=1, le=MAX_TOP_K, description="Candidate paths per product.")
    min_confidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Back each path off to its deepest level at least this confident; "
        "shortened results are flagged needs_review.",
    )
    language: Language = Field("en", description="Language of the category names returned.")


class ClassifyRequest(_Options):
    """One product (`product`) or a batch (`products`), with the options for all of them."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [{"required": ["product"]}, {"required": ["products"]}],
            # the explain cap, where clients and schema-driven tests can see it
            "if": {"properties": {"explain": {"const": True}}, "required": ["explain"]},
            "then": {"properties": {"products": {"maxItems": MAX_EXPLAIN_PRODUCTS}}},
        },
    )

    # absent, not null, in the schema: exactly one of the two is sent
    product: ProductIn | SkipJsonSchema[None] = None
    products: (
        Annotated[list[ProductIn], Field(min_length=1, max_length=MAX_PRODUCTS)]
        | SkipJsonSchema[None]
    ) = None
    explain: bool = Field(
        False,
        description=f"Also explain each prediction (`explanation` in each result): the words "
        f"that drove it, the nearest training products and, for photo models, a heat map. "
        f"At most {MAX_EXPLAIN_PRODUCTS} products per request; trained models only.",
    )

    @field_validator("product", "products", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # runs only for values sent (a default is not validated): null is refused, as the
        # schema says, while leaving the field out is how the other form is chosen
        if value is None:
            raise ValueError("must not be null; leave the field out instead")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> ClassifyRequest:
        if (self.product is None) == (self.products is None):
            raise ValueError("give either 'product' (one) or 'products' (a list), not both")
        return self

    @property
    def items(self) -> list[ProductIn]:
        return self.products if self.products is not None else [self.product]  # type: ignore[list-item]


class LevelOut(BaseModel):
    id: str
    name: str
    confidence: float


class CandidateOut(BaseModel):
    category_id: str
    path: list[str] = Field(description="Names from the top level down, in the asked language.")
    confidence: float = Field(description="Probability of the whole path.")
    levels: list[LevelOut] = Field(description="Each level's category and its confidence.")


class WordOut(BaseModel):
    word: str
    position: int = Field(description="Index among the text's whitespace-separated words.")
    weight: float = Field(
        description="linear-exact: the word's share of the class score; occlusion: the drop "
        "in the category's probability when the word is left out. Positive supports it."
    )


class NeighbourOut(BaseModel):
    id: str
    title: str
    category_id: str
    path: list[str] = Field(description="Its label's names, in the asked language.")
    similarity: float = Field(description="Cosine of the titles' word TF-IDF vectors.")


class ExplanationOut(BaseModel):
    category_id: str = Field(description="The category explained: the model's most probable.")
    path: list[str]
    probability: float
    method: Literal["linear-exact", "occlusion"]
    words: list[WordOut] = Field(
        description=f"Most supportive first; occlusion weighs at most the first "
        f"{MAX_EXPLAIN_WORDS} words (a warning says when there were more)."
    )
    neighbours: list[NeighbourOut] = Field(
        description=f"Up to {EXPLAIN_NEIGHBOURS} most similar training products; empty when "
        "the model was saved without its training index."
    )
    image_heatmap: list[list[float]] | None = Field(
        None,
        description="Photo models, with a photo: rows x columns of the drop in probability "
        "when that cell of the photo is greyed out.",
    )


class ResultOut(BaseModel):
    id: str
    category: CandidateOut | None = Field(
        description="The answer (cut back to its deepest level reaching min_confidence; the "
        "top level is always kept); null only when the model gave no candidate."
    )
    needs_review: bool
    suggestion: CandidateOut | None = Field(
        description="When needs_review: the model's full-depth best guess, for a reviewer "
        "(on a row min_confidence backed off, what the CLI writes as suggested_category and "
        "suggested_confidence)."
    )
    alternatives: list[CandidateOut] = Field(description="The next best paths (top_k - 1).")
    warnings: list[str] = Field(default_factory=list)
    explanation: ExplanationOut | None = Field(None, description="With explain: true.")


class ModelRef(BaseModel):
    name: str
    version: str | None
    digest: str | None
    kind: str | None


class ClassifyResponse(BaseModel):
    model: ModelRef
    language: Language
    results: list[ResultOut]


class TaxonomyRef(BaseModel):
    name: str
    version: str | None
    categories: int
    languages: list[str]


class ModelSummary(BaseModel):
    name: str
    ready: bool
    version: str | None = None
    digest: str | None = None
    kind: str | None = None
    uses_images: bool | None = None
    taxonomy: TaxonomyRef | None = None
    load_seconds: float | None = None


class ModelList(BaseModel):
    models: list[ModelSummary]


class ModelDetail(ModelSummary):
    created_at: str | None = None
    parent: str | None = None
    valid_metrics: dict[str, float] = Field(default_factory=dict)
    versions: list[str] = Field(default_factory=list, description="Store versions, oldest first.")


class CategoryRef(BaseModel):
    id: str
    name: str
    is_leaf: bool


class CategoryOut(BaseModel):
    id: str
    name: str
    path: list[str]
    depth: int
    is_leaf: bool
    parent_id: str | None


class CategoryDetail(CategoryOut):
    names: dict[str, str] = Field(description="Name per language code.")
    ancestors: list[CategoryRef]
    children: list[CategoryRef]


class CategoryList(BaseModel):
    taxonomy: str
    query: str | None
    results: list[CategoryOut]


class TaxonomyList(BaseModel):
    taxonomies: list[TaxonomyRef]


class Health(BaseModel):
    status: Literal["ok", "loading"]
    models: dict[str, bool] = Field(default_factory=dict)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, str]] | None = None


# -- Open Inference Protocol v2 ---------------------------------------------------------------

MAX_INFER_ELEMENTS = MAX_PRODUCTS


class InferInput(_Strict):
    name: Literal["text", "title", "description", "id"] = Field(
        description="`text` (or `title`) is required; `description` and `id` are optional, "
        "each with one element per product."
    )
    datatype: Literal["BYTES"]
    shape: list[Annotated[WholeNumber, Field(ge=1, le=MAX_INFER_ELEMENTS)]] = Field(
        ..., min_length=1, max_length=2
    )
    data: list[Annotated[str, Field(max_length=MAX_TITLE_CHARS + MAX_DESCRIPTION_CHARS)]] = Field(
        ..., min_length=1, max_length=MAX_INFER_ELEMENTS
    )
    parameters: dict[str, str | int | float | bool] | None = None


class InferParameters(_Strict):
    top_k: WholeNumber = Field(1, ge=1, le=MAX_TOP_K)
    language: Language = "en"


class InferRequestOutput(_Strict):
    name: str = Field(max_length=100)


class InferRequest(_Strict):
    id: str | None = Field(None, max_length=MAX_ID_CHARS)
    parameters: InferParameters | None = None
    inputs: list[InferInput] = Field(..., min_length=1, max_length=4)
    outputs: list[InferRequestOutput] | None = Field(None, max_length=10)


class InferOutput(BaseModel):
    name: str
    datatype: Literal["BYTES", "FP32"]
    shape: list[int]
    data: list[str] | list[float]


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None
    id: str | None
    outputs: list[InferOutput]


class TensorMeta(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool
