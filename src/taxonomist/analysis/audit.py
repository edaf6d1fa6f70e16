"""Label-noise audit: which labelled products look mislabelled, at which level, and what they
probably are.

1. Out-of-fold probabilities of a preset's model over every row (`crossval`): each row is
   scored by models that never saw it, nor any row with the same title.
2. Confident learning with `cleanlab` (`filter.find_label_issues`, pruned by noise rate) flags
   rows, ranked by how little probability the given label gets (self-confidence).
3. Tree-aware: the level at which a label looks wrong is the shallowest level where the given
   path's node is not the most probable node of that level (probabilities summed over each
   node's descendants), so a sibling mix-up ("Heels" for "Flats") reads apart from a wrong
   department ("Watches" for "Flats").
4. Titles that are identical after normalising (`items.group_key`), or near-identical (cosine
   of word TF-IDF vectors >= `NEAR_DUPLICATE`), but carry different labels: the minority
   label of a group of identical titles is flagged whatever the model thinks; on a tie, or
   for near-identical titles, the side the model doubts (out-of-fold probability of its
   label below 0.5) is.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..items import ModelInput, as_texts, group_key
from ..taxonomy import PATH_SEPARATOR, Taxonomy

logger = logging.getLogger(__name__)

NEAR_DUPLICATE = 0.9
REASONS = {
    "confident_learning": "the model, trained without this row, firmly disagrees",
    "duplicate_conflict": "an identical title carries another label",
    "near_duplicate_conflict": "a near-identical title carries another label",
}


@dataclass
class LabelIssue:
    """One suspected label error. `level` is 1-based (1: the top level of the path)."""

    rank: int
    line: int | None
    id: str
    title: str
    given: str
    suggested: str
    level: int
    score: float
    given_probability: float
    suggested_probability: float
    reason: str
    duplicate_of: str = ""


@dataclass
class AuditResult:
    issues: list[LabelIssue]
    rows: int
    suspicion: np.ndarray  # per row, 1 - out-of-fold probability of the given label
    ranking: np.ndarray  # every row, most suspect first
    flagged: np.ndarray  # per row: listed as an issue
    oof_accuracy: float
    preset: str
    folds: int
    source: str
    members: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for issue in self.issues:
            for reason in issue.reason.split(";"):
                out[reason] += 1
        return dict(out)

    def by_level(self) -> dict[int, int]:
        return dict(sorted(Counter(i.level for i in self.issues).items()))

    def to_csv(self) -> str:
        return dataclass_csv(
            self.issues, LabelIssue, ("score", "given_probability", "suggested_probability")
        )


def dataclass_csv(records: Sequence[Any], cls: type, rounded: Sequence[str]) -> str:
    """`records` (instances of the dataclass `cls`) as CSV text, a column per field, the
    `rounded` float fields to four decimals."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(cls)], lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = asdict(record)
        for key in rounded:
            row[key] = f"{row[key]:.4f}"
        writer.writerow(row)
    return buffer.getvalue()


def level_marginals(proba: np.ndarray, columns: Sequence[str], taxonomy: Taxonomy):
    """Per depth d (1-based): (node ids at d, probabilities (rows, nodes) summed over each
    node's descendant columns). A column shallower than d adds to no node at d."""
    from scipy.sparse import csr_matrix

    paths = [[c.id for c in taxonomy.ancestors(cid)] for cid in columns]  # top level first
    out = []
    for depth in range(1, max(len(p) for p in paths) + 1):
        nodes = sorted({p[depth - 1] for p in paths if len(p) >= depth})
        index = {n: j for j, n in enumerate(nodes)}
        r, c = zip(*[(i, index[p[depth - 1]]) for i, p in enumerate(paths) if len(p) >= depth])
        member = csr_matrix((np.ones(len(r)), (r, c)), shape=(len(columns), len(nodes)))
        out.append((nodes, np.asarray(proba @ member)))
    return out, paths


def wrong_level(
    proba: np.ndarray, y: np.ndarray, columns: Sequence[str], taxonomy: Taxonomy
) -> np.ndarray:
    """The shallowest 1-based level at which each row's given path is not the most probable
    node (its own depth when it is the most probable at every level)."""
    marginals, paths = level_marginals(proba, columns, taxonomy)
    level = np.array([len(paths[j]) for j in y])
    decided = np.zeros(len(y), dtype=bool)
    for depth, (nodes, probs) in enumerate(marginals, start=1):
        index = {n: j for j, n in enumerate(nodes)}
        rows = np.flatnonzero(~decided & np.array([len(paths[j]) >= depth for j in y]))
        if not len(rows):
            continue
        given = np.array([index[paths[y[i]][depth - 1]] for i in rows])
        wrong = probs[rows].argmax(1) != given
        level[rows[wrong]] = depth
        decided[rows[wrong]] = True
    return level


def near_duplicate_pairs(
    texts: Sequence[str], labels: Sequence[str], threshold: float = NEAR_DUPLICATE
) -> list[tuple[int, int, float]]:
    """(i, j, cosine) for rows whose titles are near-identical (not identical after
    normalising: those are groups) and whose labels differ; each row's closest such row."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) < 2:
        return []
    x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(
        [group_key(t) for t in texts]
    )
    keys = [group_key(t) for t in texts]
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(texts), 500):
        sims = (x[start : start + 500] @ x.T).tocsr()
        sims.data[sims.data < threshold] = 0
        sims.eliminate_zeros()
        for r in range(sims.shape[0]):
            i = start + r
            lo, hi = sims.indptr[r], sims.indptr[r + 1]
            best, best_sim = -1, 0.0
            for j, s in zip(sims.indices[lo:hi], sims.data[lo:hi]):
                if j != i and labels[j] != labels[i] and keys[j] != keys[i] and s > best_sim:
                    best, best_sim = int(j), float(s)
            if best >= 0:
                pairs[(min(i, best), max(i, best))] = best_sim
    return [(i, j, sim) for (i, j), sim in pairs.items()]


# the scorer by default: better out-of-fold probabilities find more flips. With 5% injected
# flips in 4,000 training rows, `balanced`'s top-K F1 beat cleanlab on the SVC peer on both
# pricerunner (0.955 vs 0.935) and fashion (0.860 vs 0.835), where `fast` lost on pricerunner
# (0.920): benchmarks/audit.py, docs/benchmarks.md. `--preset fast` is 2-5x quicker.
AUDIT_PRESET = "balanced"


def audit_labels(
    inputs: Sequence[ModelInput],
    labels: Sequence[str],
    taxonomy: Taxonomy,
    *,
    ids: Sequence[str] | None = None,
    lines: Sequence[int | None] | None = None,
    preset: str = AUDIT_PRESET,
    k: int = 5,
    seed: int = 13,
    source: str = "labelled data",
    progress=None,
) -> AuditResult:
    """Audit `labels` (category ids of `taxonomy`) of `inputs`; see the module docstring.

    Raises:
        DataError: fewer rows than folds, a single class, a row without a label.
    """
    from cleanlab.filter import find_label_issues

    from ..crossval import check_foldable, preset_out_of_fold

    if k < 2:
        raise ConfigError(f"folds must be at least 2, got {k}")
    for n, label in enumerate(labels):
        if not label:
            line = lines[n] if lines else n + 1
            raise DataError("unlabelled row: an audit needs every row labelled", file=source,
                            row=line)  # fmt: skip
    check_foldable(labels, k, source)
    ids = list(ids) if ids is not None else [str(i + 1) for i in range(len(labels))]
    lines = list(lines) if lines is not None else [None] * len(labels)
    texts = as_texts(inputs)
    oof = preset_out_of_fold(inputs, labels, taxonomy, preset=preset, k=k, seed=seed,
                             progress=progress)  # fmt: skip
    column = {cid: j for j, cid in enumerate(oof.labels)}
    y = np.array([column[c] for c in labels])
    proba = np.clip(oof.proba, 1e-12, None)
    proba /= proba.sum(1, keepdims=True)
    given_p = proba[np.arange(len(y)), y]
    suspicion = 1 - given_p
    flagged = np.zeros(len(y), dtype=bool)
    try:
        with warnings.catch_warnings():
            # "too few examples in class N" for small classes: expected, and not the user's
            warnings.simplefilter("ignore", UserWarning)
            flagged[find_label_issues(y, proba, n_jobs=1)] = True
    except ValueError as exc:  # cleanlab refuses degenerate inputs; say which
        raise DataError(f"confident learning could not run: {exc}", file=source) from None
    level = wrong_level(proba, y, oof.labels, taxonomy)
    best = proba.argmax(1)
    reasons: dict[int, list[str]] = defaultdict(list)
    suggested: dict[int, int] = {}
    partner: dict[int, str] = {}
    for i in np.flatnonzero(flagged).tolist():
        reasons[i].append("confident_learning")
        suggested[i] = int(best[i])
    # identical titles, different labels: the minority label is the suspect (on a tie, both)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(inputs):
        groups[group_key(text)].append(i)
    for members in groups.values():
        votes = Counter(int(y[i]) for i in members)
        if len(votes) < 2:
            continue
        top = max(votes.values())
        majority = [c for c, n in votes.items() if n == top]
        for i in members:
            if int(y[i]) in majority and len(majority) == 1:
                continue
            # a tie says one side is wrong, not which: the side the model doubts is flagged
            if len(majority) > 1 and suspicion[i] < 0.5:
                continue
            others = [j for j in members if y[j] != y[i]]
            reasons[i].append("duplicate_conflict")
            suggested.setdefault(i, int(y[others[0]]) if len(majority) > 1 else majority[0])
            partner[i] = ids[others[0]]
    for i, j, _ in near_duplicate_pairs(texts, labels):
        # the row the model doubts more is the suspect
        suspect, other = (i, j) if suspicion[i] >= suspicion[j] else (j, i)
        if suspicion[suspect] < 0.5:  # near-identical is weaker evidence than identical
            continue
        reasons[suspect].append("near_duplicate_conflict")
        suggested.setdefault(suspect, int(y[other]))
        partner.setdefault(suspect, ids[other])
    flagged_any = np.zeros(len(y), dtype=bool)
    flagged_any[list(reasons)] = True
    # a conflict the model does not share still ranks after confident disagreements of
    # the same strength: the conflict says one row of a pair is wrong, not which
    score = suspicion.copy()
    for i, why in reasons.items():
        if "confident_learning" not in why:
            score[i] = max(score[i], 0.5)
    # every row by score (the flags decide what is listed, not the order: a flag is a yes/no
    # verdict, the score how far the model is from the given label)
    ranking = np.argsort(-score, kind="stable")
    issues: list[LabelIssue] = []
    for i in ranking[flagged_any[ranking]]:
        i = int(i)
        sug = suggested[i]
        given, guess = taxonomy.get(labels[i]).path_str, taxonomy.get(oof.labels[sug]).path_str
        issues.append(
            LabelIssue(
                rank=len(issues) + 1,
                line=lines[i],
                id=ids[i],
                title=texts[i],
                given=given,
                suggested=guess,
                # the model's own view of the tree, unless the suggestion is a duplicate's
                level=int(level[i]) if sug == best[i] else first_difference(given, guess),
                score=float(score[i]),
                given_probability=float(given_p[i]),
                suggested_probability=float(proba[i, sug]),
                reason=";".join(dict.fromkeys(reasons[i])),
                duplicate_of=partner.get(i, ""),
            )
        )
    seen = oof.seen
    return AuditResult(
        issues=issues,
        rows=len(y),
        suspicion=score,
        ranking=ranking,
        flagged=flagged_any,
        oof_accuracy=float((best[seen] == y[seen]).mean()) if seen.any() else 0.0,
        preset=preset,
        folds=k,
        source=source,
        members=oof.members,
        weights=oof.weights,
    )


def first_difference(given: str, suggested: str) -> int:
    """The 1-based level where two paths part (their common depth + 1)."""
    a, b = given.split(PATH_SEPARATOR), suggested.split(PATH_SEPARATOR)
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n + 1


def render_html(result: AuditResult, limit: int = 500) -> str:
    """A page a person can read: what was done, counts, and the ranked issues with the part
    of each path that looks wrong highlighted."""

    def path_cells(given: str, suggested: str, level: int) -> tuple[str, str]:
        def mark(path: str) -> str:
            parts = path.split(PATH_SEPARATOR)
            return " &rsaquo; ".join(
                f"<b class='bad'>{html.escape(p)}</b>" if n + 1 >= level else html.escape(p)
                for n, p in enumerate(parts)
            )

        return mark(given), mark(suggested)

    counts = result.counts()
    levels = result.by_level()
    rows = []
    for issue in result.issues[:limit]:
        given, suggested = path_cells(issue.given, issue.suggested, issue.level)
        why = ", ".join(r.replace("_", " ") for r in issue.reason.split(";"))
        dup = (
            f"<br><small>conflicts with id {html.escape(issue.duplicate_of)}</small>"
            if (issue.duplicate_of)
            else ""
        )
        rows.append(
            f"<tr><td class='n'>{issue.rank}</td><td class='n'>{issue.line or ''}</td>"
            f"<td>{html.escape(issue.id)}</td><td class='title'>{html.escape(issue.title)}</td>"
            f"<td>{given}<br><small>p = {issue.given_probability:.2f}</small></td>"
            f"<td>{suggested}<br><small>p = {issue.suggested_probability:.2f}</small></td>"
            f"<td class='n'>{issue.level}</td>"
            f"<td><div class='bar'><span style='width:{issue.score * 100:.0f}%'></span></div>"
            f"{issue.score:.2f}</td><td>{html.escape(why)}{dup}</td></tr>"
        )
    level_list = "".join(f"<li>level {lvl}: {n}</li>" for lvl, n in levels.items())
    reason_list = "".join(
        f"<li><b>{n}</b> &mdash; {html.escape(r.replace('_', ' '))}: "
        f"{html.escape(REASONS.get(r, r))}</li>"
        for r, n in counts.items()
    )
    more = (
        f"<p>Showing the first {limit} of {len(result.issues)}; the CSV has them all.</p>"
        if len(result.issues) > limit
        else ""
    )
    members = ", ".join(f"{m} ({w:.2f})" for m, w in zip(result.members, result.weights) if w > 0)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Label audit: {html.escape(result.source)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2430; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }}
.summary {{ display: flex; gap: 40px; background: #f4f6f9; padding: 12px 18px;
  border-radius: 6px; }}
.summary ul {{ margin: 4px 0; padding-left: 18px; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 16px; }}
th, td {{ border-bottom: 1px solid #dde2ea; padding: 6px 8px; text-align: left;
  vertical-align: top; }}
th {{ background: #2f3b52; color: #fff; position: sticky; top: 0; }}
tr:nth-child(even) td {{ background: #fafbfd; }}
td.n {{ text-align: right; color: #5a6475; }}
td.title {{ max-width: 320px; }}
b.bad {{ color: #b3261e; }}
small {{ color: #5a6475; }}
.bar {{ width: 70px; height: 8px; background: #e6e9ef; border-radius: 4px; }}
.bar span {{ display: block; height: 8px; background: #c0392b; border-radius: 4px; }}
</style></head><body>
<h1>Label audit of {html.escape(result.source)}</h1>
<p>{len(result.issues)} suspected label errors among {result.rows} rows. Each row was scored
by a <code>{html.escape(result.preset)}</code> model that never saw it ({result.folds} grouped
folds; out-of-fold accuracy {result.oof_accuracy:.3f}; members {html.escape(members)}).
The red part of a path is where the label looks wrong.</p>
<div class="summary"><div>By reason<ul>{reason_list}</ul></div>
<div>By level of the error<ul>{level_list}</ul></div></div>
{more}
<table><thead><tr><th>#</th><th>line</th><th>id</th><th>title</th><th>given label</th>
<th>suggested</th><th>level</th><th>score</th><th>why</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
</body></html>
"""


def write_outputs(result: AuditResult, out: Path, report: Path | None = None) -> None:
    from ..persistence import atomic_write_text

    atomic_write_text(out, result.to_csv())
    if report is not None:
        atomic_write_text(report, render_html(result))


@dataclass
class LabelledRows:
    """A labelled file as the analyses read it: every row kept with its id and line."""

    taxonomy: Taxonomy
    inputs: list[ModelInput]
    labels: list[str]
    ids: list[str]
    lines: list[int]
    bad_rows: list


def check_outputs(source: Path, *outputs: tuple[Path | None, tuple[str, ...]]) -> None:
    """Refuse, before any work, an output that is the input or cannot be written."""
    for out, suffixes in outputs:
        if out is None:
            continue
        if out.suffix.lower() not in suffixes:
            raise ConfigError(f"{out}: write {' or '.join(suffixes)}, not '{out.suffix}'")
        if not out.parent.exists():
            raise ConfigError(f"{out}: folder {out.parent} does not exist")
        if out.exists() and source.exists() and out.resolve() == source.resolve():
            raise ConfigError(f"{out} is the input file; refusing to overwrite it")


def read_labelled_rows(
    path: str | Path, columns=None, taxonomy: str | None = None, *, on_bad_row=None
) -> LabelledRows:
    """Every row of a labelled file. A row without a usable label is an error naming the file
    and line (an audit of a file with holes would silently audit less than asked); other
    bad rows (an empty title) are reported through `on_bad_row` and left out."""
    from ..data import ColumnSpec, ReadReport, read_products
    from ..data.readers import detect_format
    from ..service import model_inputs, resolve_taxonomy

    path = Path(path)
    columns = columns or ColumnSpec()
    detect_format(path)
    tax = resolve_taxonomy(taxonomy, label_file=path, columns=columns)
    bad: list = []

    def collect(row) -> None:
        if row.field == columns.label_column:
            raise DataError(
                f"{row.reason}: every row of a labelled file needs a category "
                f"(label it or remove the row)",
                file=row.file, row=row.line, field=row.field,
            )  # fmt: skip
        bad.append(row)
        if on_bad_row:
            on_bad_row(row)

    out = LabelledRows(tax, [], [], [], [], bad)
    report = ReadReport(str(path))
    for batch in read_products(
        path, columns, taxonomy=tax, require_label=True, report=report, on_bad_row=collect,
        batch_size=4096,
    ):  # fmt: skip
        out.inputs.extend(model_inputs(batch, columns))
        for product in batch:
            assert product.label is not None
            out.labels.append(product.label.id)
            out.ids.append(product.id)
            out.lines.append(product.line)
    if not out.inputs:
        raise DataError("no labelled rows", file=path)
    return out


def audit_file(
    input_path: str | Path,
    out: str | Path,
    *,
    report: str | Path | None = None,
    review_db: str | None = None,
    preset: str = AUDIT_PRESET,
    folds: int = 5,
    taxonomy: str | None = None,
    columns=None,
    seed: int = 13,
    on_bad_row=None,
    progress=None,
) -> AuditResult:
    """Audit a labelled file; write the ranked CSV (and the HTML page)."""
    input_path, out = Path(input_path), Path(out)
    report = Path(report) if report else None
    check_outputs(input_path, (out, (".csv",)), (report, (".html", ".htm")))
    if review_db:
        raise ConfigError(
            "--review-db is not wired to the review queue (taxonomist.review) yet; write the "
            "CSV and queue its rows from there"
        )
    data = read_labelled_rows(input_path, columns, taxonomy, on_bad_row=on_bad_row)
    if len(data.labels) < folds:
        raise DataError(
            f"{len(data.labels)} labelled rows, fewer than the {folds} folds (last row: line "
            f"{data.lines[-1]}); give more rows or --folds {max(2, len(data.labels))}",
            file=input_path,
        )
    if len(set(data.labels)) < 2:
        raise DataError(
            f"every row has the same label ({data.taxonomy.get(data.labels[0]).path_str!r}, "
            f"first at line {data.lines[0]}); an audit needs at least two categories",
            file=input_path,
        )
    result = audit_labels(
        data.inputs, data.labels, data.taxonomy, ids=data.ids, lines=data.lines, preset=preset,
        k=folds, seed=seed, source=str(input_path), progress=progress,
    )  # fmt: skip
    write_outputs(result, out, report)
    return result
