"""Self-contained HTML report for an :class:`~taxonomist.evaluation.EvaluationResult`.

The page has no external references: styles are inline, charts are PNGs rendered with
matplotlib (Agg) and product photos are small JPEG thumbnails, all embedded as base64 data
URIs, so the file can be mailed or archived as is.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from taxonomist.data import ColumnSpec, ReadReport, read_products
from taxonomist.errors import TaxonomistError
from taxonomist.evaluation import NONE_LABEL, OTHER_LABEL, SEPARATOR, EvaluationResult

logger = logging.getLogger(__name__)

MAX_TICK_CHARS = 60
TICK_LINE_CHARS = 22
ANNOTATE_MAX_LABELS = 12
PER_CLASS_ROWS = 50
MAX_EXAMPLES = 12
THUMBNAIL_PX = 96

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #222; background: #fafafa; margin: 0; line-height: 1.45; }
.container { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: #fff; }
h1 { margin-top: 0; font-size: 1.7rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; font-size: 1.3rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f0f2f5; }
tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
.context td:first-child { font-weight: 600; width: 12rem; }
.muted { color: #666; font-size: .9rem; }
.examples td { vertical-align: middle; }
.examples td.photo { width: 100px; height: 100px; padding: 2px; text-align: center; }
.examples td.photo img { max-width: 96px; max-height: 96px; }
.examples .id { color: #777; font-size: .8rem; }
.examples .path { color: #777; }
.examples .path b { color: #222; }
.examples .wrong b { color: #b0302a; }
"""

_METRIC_NAMES = {
    "accuracy": "Accuracy (exact path)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)",
    "precision_weighted": "Precision (weighted)",
    "recall_weighted": "Recall (weighted)",
    "f1_weighted": "F1 (weighted)",
    "hierarchical_precision": "Hierarchical precision",
    "hierarchical_recall": "Hierarchical recall",
    "hierarchical_f1": "Hierarchical F1",
    "ece": "Expected calibration error (15 bins)",
    "threshold_at_precision": "Confidence threshold reaching that precision",
    "accuracy_full_depth": "Accuracy of the full-depth guesses (before backing off)",
    "same_branch": "Gold category, or an ancestor or descendant of it",
    "ancestor_of_gold": "\u2026 an ancestor of the gold category (too general)",
    "descendant_of_gold": "\u2026 a descendant of the gold category (too specific)",
}


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _metric_name(key: str, precision_target: float) -> str:
    if key.startswith("accuracy_level_"):
        return f"Accuracy at level {key.rsplit('_', 1)[-1]}"
    if key == "coverage_at_precision":
        return f"Coverage at precision \u2265 {precision_target:g}"
    return _METRIC_NAMES.get(key, key)


def _fmt(value: Any) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _table(
    headers: Sequence[str] | None, rows: Sequence[Sequence[Any]], css_class: str = ""
) -> str:
    cls = f' class="{_esc(css_class)}"' if css_class else ""
    head = (
        "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in headers) + "</tr></thead>"
        if headers
        else ""
    )
    body = []
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, (int, float, np.integer, np.floating)) or v is None
            cells.append(f'<td class="num">{_esc(_fmt(v))}</td>' if num else f"<td>{_esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table{cls}>{head}<tbody>{''.join(body)}</tbody></table>"


def _figure(uri: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{_esc(alt)}">{cap}</figure>'


def shorten_label(label: str, max_chars: int = MAX_TICK_CHARS, *, levels: int = 1) -> str:
    """Shorten a path label for a chart axis: its last `levels` levels, wrapped onto at most
    three lines.

    Args:
        label: A path label joined by ``" > "``.
        max_chars: Upper bound on the characters kept (line breaks not counted).
        levels: How many trailing levels to keep (more where leaves repeat).

    Returns:
        The label; when too long it is cut at the end, so it always reads from its start.
    """
    short = SEPARATOR.join(label.split(SEPARATOR)[-levels:])
    if len(short) > max_chars:
        short = short[: max_chars - 1].rstrip() + "\u2026"
    lines = textwrap.wrap(short, width=TICK_LINE_CHARS, break_long_words=True)
    if len(lines) > 3:
        lines = [*lines[:2], lines[2][: TICK_LINE_CHARS - 1].rstrip() + "\u2026"]
    return "\n".join(lines) or short


def tick_labels(labels: Sequence[str]) -> list[str]:
    """Axis labels for path labels: each leaf alone, with as many parent levels as it takes
    to tell apart two categories whose leaves share a name ("Socks" under pets and people)."""
    levels = [1] * len(labels)
    for _ in range(8):
        short = [SEPARATOR.join(lab.split(SEPARATOR)[-k:]) for lab, k in zip(labels, levels)]
        seen: dict[str, int] = {}
        for s in short:
            seen[s] = seen.get(s, 0) + 1
        clash = [i for i, s in enumerate(short) if seen[s] > 1]
        if not clash:
            break
        for i in clash:
            levels[i] += 1
    return [shorten_label(lab, levels=k) for lab, k in zip(labels, levels)]


def _mpl_text(text: str) -> str:
    # Matplotlib reads a pair of '$' as mathtext; prices in category names must stay literal.
    return text.replace("$", r"\$")


def _pyplot() -> Any:
    # Imported here so evaluation-only users never pay for matplotlib; private figures so
    # drawing a report changes no process-wide matplotlib state.
    from .plotting import Figures

    return Figures


def _encode(plt: Any, fig: Any) -> str:
    try:
        buf = io.BytesIO()
        # Dropping the default "Software" tag keeps even the PNG bytes free of URLs.
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _level_chart(plt: Any, per_level: list[dict[str, float]]) -> str:
    levels = [int(r["level"]) for r in per_level]
    x = np.arange(len(levels))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(levels) + 2.5), 3.4))
    width = 0.38
    acc = [r["accuracy"] for r in per_level]
    f1 = [r["f1_macro"] for r in per_level]
    ax.bar(x - width / 2, acc, width, label="accuracy", color="#4c72b0")
    ax.bar(x + width / 2, f1, width, label="macro-F1", color="#dd8452")
    for xs, vals in ((x - width / 2, acc), (x + width / 2, f1)):
        for xi, v in zip(xs, vals, strict=True):
            ax.text(xi, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [f"level {d}" for d in levels])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)
    ax.set_title("Accuracy and macro-F1 by level")
    return _encode(plt, fig)


def _confusion_chart(plt: Any, labels: list[str], matrix: list[list[int]]) -> str:
    m = np.asarray(matrix, dtype=float)
    names = [*labels, OTHER_LABEL]
    # An all-empty "(other)" row and column would only add a blank stripe.
    if m.shape[0] > 1 and not m[-1, :].any() and not m[:, -1].any():
        m, names = m[:-1, :-1], names[:-1]
    totals = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    k = len(names)
    side = min(14.0, max(5.0, 0.42 * k + 3.0))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ticks = [_mpl_text(t) for t in tick_labels(names)]
    ax.set_xticks(np.arange(k), ticks, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(k), ticks, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Confusion matrix (row-normalised)")
    if k <= ANNOTATE_MAX_LABELS:
        for i in range(k):
            for j in range(k):
                if norm[i, j] > 0:
                    color = "white" if norm[i, j] > 0.5 else "#222"
                    ax.text(
                        j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    return _encode(plt, fig)


def coverage_axes(
    rows: Sequence[dict[str, Any]], target: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x, y) limits that fit the accuracy-coverage points and the target line, with a small
    margin: accuracies between 0.85 and 1 drawn on a 0-1 axis are a flat line at the top."""
    xs = [float(r["coverage"]) for r in rows] or [0.0, 1.0]
    ys = [float(r["accuracy"]) for r in rows] or [0.0, 1.0]
    low_y, high_y = min(*ys, target), max(*ys, target)
    span_y = max(high_y - low_y, 0.05)
    low_x, high_x = min(xs), max(xs)
    span_x = max(high_x - low_x, 0.05)
    return (
        (max(0.0, low_x - 0.05 * span_x), high_x + 0.05 * span_x),
        (max(0.0, low_y - 0.08 * span_y), high_y + 0.05 * span_y),
    )


def _coverage_chart(plt: Any, result: EvaluationResult) -> str:
    rows = [r for r in result.abstention if r["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.plot([r["coverage"] for r in rows], [r["accuracy"] for r in rows], marker="o", ms=3)
    target = result.precision_target
    ax.axhline(target, ls="--", lw=1, color="#888", label=f"target {target:g}")
    cov = result.metrics.get("coverage_at_precision", 0.0)
    if cov > 0:
        ax.axvline(cov, ls=":", lw=1, color="#c44e52", label=f"coverage {cov:.2f}")
    xlim, ylim = coverage_axes(rows, target)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("coverage (share of items kept)")
    ax.set_ylabel("accuracy on kept items")
    ax.set_title("Accuracy vs coverage")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    return _encode(plt, fig)


def _reliability_chart(plt: Any, result: EvaluationResult) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    filled = [r for r in result.reliability if r["count"]]
    lower = np.array([r["lower"] for r in filled], dtype=float)
    upper = np.array([r["upper"] for r in filled], dtype=float)
    acc = np.array([r["accuracy"] for r in filled], dtype=float)
    ax.bar(
        lower,
        acc,
        width=upper - lower,
        align="edge",
        edgecolor="#333",
        color="#4c72b0",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], ls="--", color="#888", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    # Below the axes: bars can reach any height, so no corner inside is reliably free.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    return _encode(plt, fig)


def _class_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["category"], r["support"], r["precision"], r["recall"], r["f1"]] for r in rows]


@dataclass(frozen=True)
class Example:
    """One misclassified product, as the report shows it.

    ``gold`` and ``predicted`` are paths joined by ``" > "`` (``predicted`` is empty for an
    abstention); ``image`` is a local file or None; ``title`` empty shows the id instead.
    """

    id: str
    title: str
    image: str | None
    gold: str
    predicted: str
    confidence: float | None = None


def pick_examples(examples: Iterable[Example], limit: int = MAX_EXAMPLES) -> list[Example]:
    """The misclassified products worth showing: at most ``limit`` of them.

    Those with a photo come first; within that, one per (gold, predicted) pair before any
    repeat, the most confident mistakes first.
    """
    ranked = sorted(
        examples,
        key=lambda e: (e.image is None, -(e.confidence if e.confidence is not None else -1.0)),
    )
    seen: set[tuple[bool, str, str]] = set()
    keyed = []
    for order, example in enumerate(ranked):
        pair = (example.image is None, example.gold, example.predicted)
        keyed.append((example.image is None, pair in seen, order, example))
        seen.add(pair)
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed[: max(limit, 0)]]


def misclassified_examples(
    gold_path: str | os.PathLike[str],
    columns: ColumnSpec,
    mistakes: Sequence[Example],
    *,
    limit: int = MAX_EXAMPLES,
) -> list[Example]:
    """Pick up to ``limit`` ``mistakes`` to show, with titles and photos from the gold file.

    ``mistakes`` carry ids, paths and confidences; titles are read from ``columns.text_columns``
    and, with ``columns.image_column``, photos are located (relative to the gold file's
    folder, never fetched from the web) so that products with one can be preferred. Best
    effort: a file without those columns gives examples without titles or photos.
    """
    from .images import resolve_image_ref

    gold_path = Path(gold_path)
    wanted = {e.id for e in mistakes}
    images: dict[str, str] = {}
    if columns.image_column and wanted:
        # The id joined to the image cell ("id. cell") is never empty, so rows without a
        # photo are not dropped as "empty text", and no picture is decoded on this pass.
        spec = replace(
            columns, text_columns=(columns.id_column, columns.image_column), image_column=None
        )
        for product_id, text, used in _texts(gold_path, spec, wanted):
            cell = text
            if columns.id_column in used:
                cell = text[len(product_id) + 2 :] if text.startswith(f"{product_id}. ") else ""
            path, _ = resolve_image_ref(cell, gold_path.parent) if cell else (None, None)
            if path is not None and path.is_file():
                images[product_id] = str(path)
    chosen = pick_examples(
        (replace(e, image=images.get(e.id, e.image)) for e in mistakes), limit=limit
    )
    need = {e.id for e in chosen if not e.title}
    titles: dict[str, str] = {}
    if need:
        spec = replace(columns, image_column=None)
        for product_id, text, _ in _texts(gold_path, spec, need, stop_when_found=True):
            titles[product_id] = text
    return [replace(e, title=e.title or titles.get(e.id, "")) for e in chosen]


def _texts(
    path: Path, columns: ColumnSpec, ids: set[str], *, stop_when_found: bool = False
) -> Iterable[tuple[str, str, list[str]]]:
    """(id, text, text columns used) for the products of ``path`` whose id is in ``ids``."""
    report = ReadReport(str(path))
    found = 0
    try:
        # the gold file was read (and its problems reported) already: no second warning
        for batch in read_products(
            path, columns, report=report, batch_size=4096, check_ids=False, quiet=True
        ):
            for product in batch:
                if product.id in ids:
                    found += 1
                    yield product.id, product.text, report.text_columns
            if stop_when_found and found >= len(ids):
                return
    except TaxonomistError as exc:
        # the report is still written, but its examples lose titles and photos: say why
        logger.warning(
            "report: misclassified examples shown without titles or photos: cannot read "
            "columns %s of %s (%s)",
            ", ".join(columns.text_columns),
            path,
            exc,
        )


def _thumbnail(path: str) -> str | None:
    """A JPEG data URI of the photo at ``path``, at most THUMBNAIL_PX a side; None if unusable."""
    from .images import open_rgb

    try:
        image = open_rgb(path)
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
    except Exception as exc:  # noqa: BLE001 - a bad photo costs its picture, never the report
        logger.warning("report: photo %s left out (%s)", path, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _path_cell(path: str, other: str, css_class: str = "") -> str:
    """A path with the levels it shares with ``other`` muted and the rest in bold."""
    parts = [p for p in path.split(SEPARATOR) if p] if path else []
    if not parts:
        return f'<td class="path {css_class}"><b>{_esc(NONE_LABEL)}</b></td>'
    theirs = other.split(SEPARATOR) if other else []
    same = 0
    while same < min(len(parts), len(theirs)) and parts[same] == theirs[same]:
        same += 1
    same = min(same, len(parts) - 1)  # an ancestor of the other path: its leaf in bold
    shared = _esc(SEPARATOR.join(parts[:same]) + SEPARATOR) if same else ""
    rest = _esc(SEPARATOR.join(parts[same:]))
    return f'<td class="path {css_class}">{shared}<b>{rest}</b></td>'


def _examples_section(examples: Sequence[Example], total: int) -> list[str]:
    parts = ["<h2>Misclassified examples</h2>"]
    if not examples:
        parts.append('<p class="muted">No misclassified products.</p>')
        return parts
    shown = pick_examples(examples, MAX_EXAMPLES)
    with_photo = any(e.image for e in shown)
    parts.append(
        f'<p class="muted">{len(shown)} of {total} misclassified products'
        + (", those with a photo first" if with_photo else "")
        + "; the most confident mistakes first. Levels shared by both paths are grey.</p>"
    )
    rows = []
    for e in shown:
        uri = _thumbnail(e.image) if e.image else None
        photo = f'<img src="{uri}" alt="{_esc(e.title or e.id)}">' if uri else ""
        name = _esc(e.title) if e.title else ""
        product = f'{name}<div class="id">{_esc(e.id)}</div>'
        rows.append(
            "<tr>"
            + (f'<td class="photo">{photo}</td>' if with_photo else "")
            + f"<td>{product}</td>"
            f"{_path_cell(e.gold, e.predicted)}"
            f"{_path_cell(e.predicted, e.gold, 'wrong')}"
            f'<td class="num">{_esc(_fmt(e.confidence))}</td>'
            "</tr>"
        )
    columns = ("Photo",) * with_photo + ("Product", "Gold", "Predicted", "Confidence")
    head = "".join(f"<th>{h}</th>" for h in columns)
    parts.append(
        f'<table class="examples"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return parts


def render_html(
    result: EvaluationResult,
    *,
    title: str = "Taxonomist evaluation",
    context: dict[str, str] | None = None,
    examples: Sequence[Example] | None = None,
    misclassified: int | None = None,
) -> str:
    """Render the evaluation as one self-contained HTML page.

    Args:
        result: What :func:`taxonomist.evaluation.evaluate` returned.
        title: Page title and top heading.
        context: Key/value lines shown at the top (input file, taxonomy, model, ...).
        examples: Misclassified products; with it, a "Misclassified examples" section shows
            up to ``MAX_EXAMPLES`` of them (see :func:`pick_examples`), photos embedded as
            thumbnails. A photo that cannot be read is left out; its row stays.
        misclassified: How many products were misclassified in all (default:
            ``len(examples)``), when ``examples`` is a selection.

    Returns:
        The HTML document as a string.
    """
    plt = _pyplot()
    target = result.precision_target
    parts: list[str] = [f"<h1>{_esc(title)}</h1>"]
    if context:
        parts.append(_table(None, [[k, v] for k, v in context.items()], "context"))
    parts.append(f'<p class="muted">{result.n} items evaluated.</p>')

    parts.append("<h2>Headline metrics</h2>")
    parts.append(
        _table(
            ["Metric", "Value"],
            [[_metric_name(k, target), float(v)] for k, v in result.metrics.items()],
        )
    )

    parts.append("<h2>Per level</h2>")
    level_cols = ["accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted"]
    parts.append(
        _table(
            [
                "Level",
                "Items",
                "Accuracy",
                "Precision (macro)",
                "Recall (macro)",
                "F1 (macro)",
                "F1 (weighted)",
            ],
            [
                [int(r["level"]), int(r["n"]), *(float(r[c]) for c in level_cols)]
                for r in result.per_level
            ],
        )
    )
    parts.append(_figure(_level_chart(plt, result.per_level), "Accuracy and macro-F1 per level"))

    parts.append("<h2>Confusions</h2>")
    n_labels = len(result.confusion_labels)
    parts.append(
        _figure(
            _confusion_chart(plt, result.confusion_labels, result.confusion_matrix),
            "Row-normalised confusion matrix",
            f"The {n_labels} most frequent gold categories (labelled by their own names, with "
            "a parent where two share one); "
            f"everything else is pooled as {OTHER_LABEL}.",
        )
    )
    parts.append("<h3>Most frequent confusions</h3>")
    if result.top_confusions:
        parts.append(
            _table(
                ["Gold", "Predicted", "Count"],
                [[c["gold"], c["predicted"], int(c["count"])] for c in result.top_confusions],
            )
        )
    else:
        parts.append('<p class="muted">No confusions: every prediction matched its gold path.</p>')
    if examples is not None:
        total = misclassified if misclassified is not None else len(examples)
        parts.extend(_examples_section(examples, total))

    if result.abstention:
        parts.append("<h2>Confidence: abstention and calibration</h2>")
        cov = result.metrics.get("coverage_at_precision", 0.0)
        thr = result.metrics.get("threshold_at_precision", 1.0)
        parts.append(
            _figure(
                _coverage_chart(plt, result),
                "Accuracy versus coverage",
                f"Keeping items with confidence \u2265 {thr:.3f} covers {cov:.1%} of them "
                f"at accuracy \u2265 {target:g}."
                if cov > 0
                else f"No confidence threshold reaches accuracy \u2265 {target:g}.",
            )
        )
        if result.reliability:
            ece = result.metrics.get("ece")
            cap = f"Expected calibration error (ECE): {ece:.3f}." if ece is not None else ""
            parts.append(_figure(_reliability_chart(plt, result), "Reliability diagram", cap))
        parts.append(
            _table(
                ["Threshold", "Coverage", "Accuracy"],
                [[r["threshold"], r["coverage"], r["accuracy"]] for r in result.abstention],
            )
        )

    parts.append("<h2>Per category</h2>")
    headers = ["Category", "Support", "Precision", "Recall", "F1"]
    top = result.per_class[:PER_CLASS_ROWS]
    parts.append(f"<h3>Most frequent {len(top)} of {len(result.per_class)} categories</h3>")
    parts.append(_table(headers, _class_rows(top)))
    if len(result.per_class) > PER_CLASS_ROWS:
        worst = sorted(result.per_class, key=lambda r: (r["f1"], -r["support"], r["category"]))
        parts.append(f"<h3>Weakest {PER_CLASS_ROWS} categories by F1</h3>")
        parts.append(_table(headers, _class_rows(worst[:PER_CLASS_ROWS])))

    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<main class="container">\n{chr(10).join(parts)}\n</main>\n</body>\n</html>\n'
    )


def write_html(result: EvaluationResult, path: str | os.PathLike[str], **kw: Any) -> None:
    """Render the report and write it atomically.

    Args:
        result: What :func:`taxonomist.evaluation.evaluate` returned.
        path: Destination file; its directory must exist.
        **kw: Passed on to :func:`render_html` (``title``, ``context``, ``examples``,
            ``misclassified``).
    """
    from .persistence import atomic_write_text

    atomic_write_text(path, render_html(result, **kw))
    logger.info("wrote evaluation report to %s", path)
