"""schemathesis 4 against the app's own OpenAPI schema, every operation, all default checks.

The app runs in-process with API keys (so the `ignored_auth` check sees a 401 without one)
over a linear model on the tiny corpus: each call costs milliseconds. Classify gets at least
100 generated examples (counted); the other operations fewer, since they are simple.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from api_support import MODEL_NAME, tiny_model_dir  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from taxonomist.api import ApiSettings, create_app  # noqa: E402
from taxonomist.api.auth import new_key  # noqa: E402
from taxonomist.api.schemas import NAME_PATTERN  # noqa: E402

KEY, KEY_LINE = new_key(["classify"], "schemathesis")
AUTH = {"Authorization": f"Bearer {KEY}"}
CLASSIFY = "/v1/models/{name}/classify"
INFER = "/v2/models/{name}/infer"


# the schema is read at import (collection) time; the model joins the app in a fixture
APP = create_app(ApiSettings(keys=KEY_LINE))
# a body over the 2 MB cap is refused with 413 before it is parsed: a right answer to
# schema-violating data too (schemathesis's default list omits it)
CONFIG = SchemathesisConfig.from_str(
    """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _serve_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    from taxonomist.classifier import load_classifier

    model: Path = tiny_model_dir(tmp_path_factory)
    APP.state.registry.serve(MODEL_NAME, load_classifier(model))


SETTINGS = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": True,  # the same examples every run: a failure reproduces
}


def _call(case, **kwargs) -> None:
    """Send a case with a valid key and the served model's name, except where a negative
    case broke those on purpose (then the server must refuse it as it stands)."""
    positive = case.meta is None or case.meta.generation.mode.is_positive
    sent = {k.lower() for k in (case.headers or {})}
    headers = AUTH if positive or "authorization" not in sent else {}
    name = (case.path_parameters or {}).get("name")
    if name is not None and (positive or re.fullmatch(NAME_PATTERN, str(name))):
        case.path_parameters["name"] = MODEL_NAME  # mostly the served model, else only 404s
    case.call_and_validate(headers=headers, **kwargs)


@pytest.fixture
def classify_calls():
    calls: list[int] = []
    yield calls
    assert len(calls) >= 100, f"only {len(calls)} classify examples ran"


@schema.include(path=CLASSIFY).parametrize()
@settings(max_examples=110, **SETTINGS)
def test_classify_operation(case, classify_calls: list[int]) -> None:
    classify_calls.append(1)
    _call(case)


@schema.exclude(path=[CLASSIFY, INFER]).parametrize()
@settings(max_examples=15, **SETTINGS)
def test_other_operations(case) -> None:
    _call(case)


@schema.include(path=INFER).parametrize()
@settings(max_examples=40, **SETTINGS)
def test_inference_protocol(case) -> None:
    # OIP tensors tie `shape` to the number of elements and need a `text` input: JSON
    # Schema cannot say either, so schema-valid bodies may be (rightly) refused with 400
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    _call(case, excluded_checks=[positive_data_acceptance])
