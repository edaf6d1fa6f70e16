"""Closing the loop: retrain on reviewers' labels, and promote only a better candidate.

A version trained by `taxonomist train --store DIR --name NAME` records where its training
data was (the store manifest's `training_data`); the name's first version froze a holdout
(`taxonomist.holdout`) that no version trains on. A candidate made here keeps its own
training data beside its weights (`training_data.csv`: id, text, category_id), so it can be
retrained in turn. Every retrain writes `<store>/<name>/retrain-reports/<time>-<v>.json`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError, ModelError
from ..persistence import atomic_write_text, read_manifest, write_csv_rows
from ..taxonomy import Taxonomy

if TYPE_CHECKING:
    from ..data import ColumnSpec

logger = logging.getLogger(__name__)

TRAINING_DATA = "training_data.csv"
REPORTS = "retrain-reports"
CHECK_FRACTION = 0.2  # of the reviewed products, kept out of the candidate's training
ALPHA = 0.05  # McNemar's exact test: refuse when the candidate is worse at this level

Rows = list[tuple[str, str, str]]  # (product id, text, category id)


# -- data files -------------------------------------------------------------------------------
def write_rows(path: Path, rows: Rows) -> None:
    write_csv_rows(path, ["id", "text", "category_id"], rows)


def read_rows(path: Path) -> Rows:
    if not path.exists():
        raise DataError("missing: the model store keeps this file beside each version", file=path)
    with open(path, encoding="utf-8", newline="") as handle:
        return [(r["id"], r["text"], r["category_id"]) for r in csv.DictReader(handle)]


def _fraction_of(product_id: str, salt: str) -> float:
    digest = hashlib.sha1(f"{salt}:{product_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# -- training data of a version -------------------------------------------------------------
def _recorded_columns(data: dict[str, Any]) -> ColumnSpec:
    """The columns a version's training files were read with (`training_data.columns`)."""
    from ..data import ColumnSpec

    spec = dict(data.get("columns") or {})
    spec["text_columns"] = tuple(spec.get("text_columns") or ("title", "description"))
    spec["image_column"] = None  # the loop learns from text; photos stay where they are
    return ColumnSpec(**spec)


def version_unlabelled(manifest: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """(texts, note): the unlabelled products a version self-trained on (`train
    --unlabelled`, recorded by the store), so that its retrained candidate learns from the same
    pool rather than quietly losing it. A pool file that is gone is a note, not an error: the
    candidate then learns from labels alone, and the gate still compares it fairly."""
    from ..service import read_unlabelled

    data = (manifest.get("store") or {}).get("training_data") or {}
    if not data.get("unlabelled"):
        return None, None
    path = Path(data["unlabelled"])
    if not path.exists():
        return None, f"the unlabelled file this version self-trained on is gone ({path})"
    texts, report = read_unlabelled(path, _recorded_columns(data))
    note = f"{len(report.bad_rows)} bad rows of {path} skipped" if report.bad_rows else None
    return texts, note


def version_rows(version_dir: Path, manifest: dict[str, Any], taxonomy: Taxonomy) -> Rows:
    """What a stored version trained on: its own `training_data.csv` (a retrained
    candidate), or the files `train --store` recorded (read as `train` read them).

    Raises:
        DataError: the version names no training data, or its files are gone.
    """
    from ..data import read_products

    data = (manifest.get("store") or {}).get("training_data") or {}
    if data.get("file"):
        return read_rows(version_dir / data["file"])
    if not data.get("train"):
        raise DataError(
            "this version does not record its training data; retrain needs a version made "
            "by `taxonomist train --store ... --name ...` or by retrain",
            file=version_dir / "manifest.json",
        )
    columns = _recorded_columns(data)
    rows: Rows = []
    for key in ("train", "valid"):
        if not data.get(key):
            continue
        path = Path(data[key])
        if not path.exists():
            raise DataError(
                "the training data this version recorded is gone; restore it to retrain",
                file=path,
            )
        for batch in read_products(path, columns, taxonomy=taxonomy, require_label=True):
            rows.extend((p.id, p.text, p.label.id) for p in batch if p.label is not None)
    return rows


def _train(
    rows: Rows,
    taxonomy: Taxonomy,
    out_dir: Path,
    *,
    kind: str,
    config: Any,
    preset: str | None,
    precision_target: float,
    seed: int = 13,
    unlabelled: list[str] | None = None,
) -> Path:
    """Fit a model of `kind`/`config` as `train_model` does (validation cut, calibration,
    routing thresholds, refit on everything) and save it with its training data."""
    from ..models import model_class
    from ..training import cut_validation

    texts = [r[1] for r in rows]
    labels = [r[2] for r in rows]
    # small catalogues need a larger share to give validation its minimum of rows
    fraction = min(0.3, max(0.1, 20 / max(len(rows), 1)))
    train_texts, train_labels, valid_texts, valid_labels = cut_validation(
        list(texts), list(labels), fraction, seed
    )
    model = model_class(kind)(taxonomy, config)
    model.precision_target = precision_target
    model.fit(train_texts, train_labels, valid_texts, valid_labels, unlabelled=unlabelled)
    if not getattr(config, "finetune_blocks", 0) and kind != "finetune":
        model.refit_full(train_texts + valid_texts, train_labels + valid_labels)
    path = model.save(
        out_dir,
        extra={"preset": preset, "train_rows": len(train_texts), "valid_rows": len(valid_texts)},
    )
    write_rows(Path(path) / TRAINING_DATA, rows)
    return Path(path)


def _data_digest(rows: Rows) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update("\x1f".join(row).encode() + b"\n")
    return h.hexdigest()[:16]


def queue_file(
    input_file: str | Path, store_dir: str | Path, name: str, review_db: str | Path
) -> int:
    """Classify a file with the store's current version of `name`, queueing the products
    below its routing thresholds; return how many were queued."""
    from ..service import classify_file

    with tempfile.TemporaryDirectory() as tmp:
        outcome = classify_file(
            input_file,
            Path(tmp) / "p.csv",
            store=store_dir,
            name=name,
            review_db=review_db,
            device="cpu",
        )
    return outcome.queued or 0


# -- the gate ---------------------------------------------------------------------------------
def mcnemar_worse_p(current_right: Sequence[bool], candidate_right: Sequence[bool]) -> float:
    """One-sided exact McNemar p-value that the candidate is worse than the current model
    on paired outcomes: P(X >= b) for X ~ Binomial(b + c, 1/2), where b counts rows only
    the current model gets right and c rows only the candidate does."""
    b = sum(1 for a, k in zip(current_right, candidate_right) if a and not k)
    c = sum(1 for a, k in zip(current_right, candidate_right) if k and not a)
    n = b + c
    if n == 0 or b <= c:
        return 1.0
    return float(sum(math.comb(n, i) for i in range(b, n + 1)) / 2**n)


@dataclass
class RetrainReport:
    """What a retrain did and why; saved as JSON under the store's retrain-reports/."""

    name: str
    current: str
    candidate: str | None
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    holdout: dict[str, Any] = field(default_factory=dict)
    reviewed_check: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _correct(model_dir: Path, rows: Rows) -> list[bool]:
    from ..models import load_model

    if not rows:
        return []
    model = load_model(model_dir, "cpu")
    preds = model.predict([r[1] for r in rows])
    return [p.best.category_id == r[2] for p, r in zip(preds, rows)]


def retrain(
    store_dir: str | Path,
    name: str,
    review_db: str | Path,
    *,
    alpha: float = ALPHA,
    check_fraction: float = CHECK_FRACTION,
    prepare: Callable[[Rows], Rows] | None = None,
) -> RetrainReport:
    """Train a candidate on the current version's data plus reviewed labels, gate it, and
    promote it only when it passes.

    The candidate has the current version's kind and configuration. A reviewed label
    replaces the training label of the same product id; products in the frozen holdout
    are never trained on. A fixed share of the reviewed products (by id hash) is kept out
    of training to check the candidate on. The candidate is promoted when (1) on the
    holdout it is not worse than the current version by McNemar's exact test at `alpha`,
    and (2) on the held-back reviewed products it is right more often than the current
    version (or as often, when the current version makes no error there). `prepare`
    transforms the training rows before fitting (used to test the gate).

    Raises:
        ConfigError: no reviewed labels yet, or the store has no current version.
    """
    from ..holdout import read_holdout
    from ..items import group_key
    from ..models import model_class
    from ..persistence import read_taxonomy
    from ..store import ModelStore
    from .queue import ReviewStore

    root = Path(store_dir)
    store = ModelStore(root)
    current_dir = Path(store.current(name))
    current_version = store.current_version(name)
    assert current_version is not None  # store.current raised otherwise
    manifest = read_manifest(current_dir)
    taxonomy = read_taxonomy(current_dir)
    holdout: Rows = [("", t, c) for t, c in read_holdout(root, name) if c in taxonomy]
    if not holdout:
        raise ConfigError(
            f"'{name}' has no frozen holdout to compare versions on: its first version was "
            "trained on too few rows, or not through `taxonomist train --store`"
        )
    frozen = {group_key(r[1]) for r in holdout}
    base_rows = version_rows(current_dir, manifest, taxonomy)
    with ReviewStore(review_db, taxonomy) as reviews:
        reviewed = reviews.reviewed_labels()
    reviewed = [r for r in reviewed if r["category_id"] in taxonomy]
    if not reviewed:
        raise ConfigError("no reviewed labels in the review database yet; nothing to learn from")
    check: Rows = []
    learn: dict[str, tuple[str, str, str]] = {}
    for r in reviewed:
        row = (r["product_id"], r["text"], r["category_id"])
        if group_key(r["text"]) in frozen:
            continue  # the holdout is never trained on, whatever a reviewer said
        if _fraction_of(r["product_id"], "review-check") < check_fraction:
            check.append(row)
        else:
            learn[r["product_id"]] = row
    check_ids = {r[0] for r in check}
    rows: Rows = []
    replaced = 0
    for base in base_rows:
        if group_key(base[1]) in frozen or base[0] in check_ids:
            continue
        if base[0] in learn:  # a reviewer's label replaces the original one of that product
            rows.append(learn.pop(base[0]))
            replaced += 1
        else:
            rows.append(base)
    added = list(learn.values())
    rows += added
    if prepare is not None:
        rows = prepare(rows)
    kind = manifest["kind"]
    config = model_class(kind).config_class.from_dict(manifest.get("config", {}))
    pool, pool_note = (
        version_unlabelled(manifest) if model_class(kind).uses_unlabelled else (None, None)
    )
    if pool:  # the holdout is never trained on, not even as pseudo-labels
        pool = [t for t in pool if group_key(t) not in frozen]
    if pool_note:
        logger.warning("retrain %s: %s", name, pool_note)
    recorded = (manifest.get("store") or {}).get("training_data") or {}
    kept_pool = (
        {"unlabelled": recorded["unlabelled"], "columns": recorded.get("columns")} if pool else {}
    )
    target = float((manifest.get("routing") or {}).get("precision_target", 0.99))
    with tempfile.TemporaryDirectory(prefix=".retrain-", dir=root) as tmp:
        model_dir = _train(
            rows,
            taxonomy,
            Path(tmp) / "candidate",
            kind=kind,
            config=config,
            preset=manifest.get("preset"),
            precision_target=target,
            unlabelled=pool or None,
        )
        candidate = store.add(
            name,
            model_dir,
            parent=current_version,
            data_digest=_data_digest(rows),
            extra={"training_data": {"file": TRAINING_DATA, **kept_pool}},
            promote=False,
            move=True,
        )
    candidate_dir = _version_dir(root, name, candidate)
    report = RetrainReport(
        name=name,
        current=current_version,
        candidate=candidate,
        promoted=False,
        training={
            "rows": len(rows),
            "reviewed_labels": len(reviewed),
            "reviewed_trained_on": len(reviewed) - len(check),
            "new_products": len(added),
            "held_back_for_check": len(check),
            "labels_replaced": replaced,
            "unlabelled_rows": len(pool or []),
            **({"unlabelled_note": pool_note} if pool_note else {}),
        },
        at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    cur_h, cand_h = _correct(current_dir, holdout), _correct(candidate_dir, holdout)
    p_worse = mcnemar_worse_p(cur_h, cand_h)
    report.holdout = {
        "rows": len(holdout),
        "current_accuracy": sum(cur_h) / len(holdout),
        "candidate_accuracy": sum(cand_h) / len(holdout),
        "only_current_right": sum(1 for a, b in zip(cur_h, cand_h) if a and not b),
        "only_candidate_right": sum(1 for a, b in zip(cur_h, cand_h) if b and not a),
        "mcnemar_p_candidate_worse": p_worse,
        "alpha": alpha,
    }
    cur_c, cand_c = _correct(current_dir, check), _correct(candidate_dir, check)
    report.reviewed_check = {
        "rows": len(check),
        "current_right": sum(cur_c),
        "candidate_right": sum(cand_c),
    }
    holdout_ok = p_worse >= alpha
    if not holdout_ok:
        report.reasons.append(
            f"worse on the frozen holdout: accuracy {report.holdout['candidate_accuracy']:.4f} "
            f"vs {report.holdout['current_accuracy']:.4f} (McNemar exact p = {p_worse:.3g} "
            f"< {alpha})"
        )
    if not check:
        check_ok = False
        report.reasons.append("no reviewed products were held back to check the candidate on")
    elif sum(cur_c) < len(check):
        check_ok = sum(cand_c) > sum(cur_c)
        if not check_ok:
            report.reasons.append(
                f"not better on the {len(check)} reviewed products it did not train on "
                f"({sum(cand_c)} right vs the current version's {sum(cur_c)})"
            )
    else:
        check_ok = sum(cand_c) == len(check)
        if not check_ok:
            report.reasons.append(
                f"worse on the {len(check)} reviewed products it did not train on "
                f"({sum(cand_c)} right vs {sum(cur_c)})"
            )
    if holdout_ok and check_ok:
        store.promote(name, candidate)
        report.promoted = True
        report.reasons.append(
            f"promoted: holdout accuracy {report.holdout['candidate_accuracy']:.4f} vs "
            f"{report.holdout['current_accuracy']:.4f} (not worse, McNemar p = {p_worse:.3g}); "
            f"{sum(cand_c)}/{len(check)} held-back reviewed products right vs {sum(cur_c)}"
        )
    path = root / name / REPORTS / f"{report.at.replace(':', '')}-{candidate}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report.report_path = str(path)
    atomic_write_text(path, json.dumps(report.to_dict(), indent=2))
    logger.info("retrain %s: %s", name, "; ".join(report.reasons))
    return report


def _version_dir(root: Path, name: str, version: str) -> Path:
    path = root / name / "versions" / version
    if not path.is_dir():
        raise ModelError(f"model store has no version {version} of {name} at {path}")
    return path


def shuffled(seed: int = 0) -> Callable[[Rows], Rows]:
    """A `prepare` that shuffles the labels among the rows (a deliberately broken model)."""

    def prepare(rows: Rows) -> Rows:
        labels = [r[2] for r in rows]
        random.Random(seed).shuffle(labels)
        return [(r[0], r[1], label) for r, label in zip(rows, labels)]

    return prepare
