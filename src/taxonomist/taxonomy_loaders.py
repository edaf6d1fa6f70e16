"""Read taxonomies from files: Shopify TSV, Google `id - A > B`, plain path lists, our JSON.

`load_taxonomy("shopify")` / `load_taxonomy("google")` return the bundled releases; any other
value is a file path whose format is recognised from its name and first line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import TaxonomyError
from .taxonomy import PATH_SEPARATOR, Node, Taxonomy

BUNDLED = {
    "shopify": ("shopify_2024-07.tsv.gz", "shopify", "2024-07"),
    "google": ("google_2021-09-21.en-US.txt.gz", "google", "2021-09-21"),
}
SHOPIFY_COLUMNS = ("id", "parent_id", "name_en")
_GOOGLE_LINE = re.compile(r"^\s*(\d+)\s+-\s+(.+?)\s*$")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TaxonomyError(f"taxonomy file not found: {path}") from None
    except OSError as exc:
        raise TaxonomyError(f"cannot read taxonomy file {path}: {exc.strerror}") from None
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TaxonomyError(
            f"{path}: line {line}: bytes that are not UTF-8 ({raw[exc.start : exc.end]!r}); "
            "save the taxonomy as UTF-8"
        ) from None


def load_shopify_tsv(path: str | Path, *, version: str | None = None) -> Taxonomy:
    """Shopify Standard Product Taxonomy flattened to TSV (`id, parent_id, name_en, name_zh_CN`).

    Language columns are every `name_<lang>`; `full_path_<lang>` columns, when present, are
    checked against the names so an edited file cannot disagree with itself.
    """
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_read_text(path)), delimiter="\t")
    header = reader.fieldnames or []
    missing = [c for c in SHOPIFY_COLUMNS if c not in header]
    if missing:
        raise TaxonomyError(f"{path}: missing column(s) {', '.join(missing)}; found {header}")
    langs = {c[len("name_") :]: c for c in header if c.startswith("name_")}
    nodes: list[Node] = []
    for row in reader:
        line = reader.line_num
        names = {_lang_code(lang): (row.get(col) or "").strip() for lang, col in langs.items()}
        nodes.append(
            Node(
                id=(row["id"] or "").strip(),
                parent_id=(row["parent_id"] or "").strip() or None,
                names={k: v for k, v in names.items() if v} or {"en": ""},
                source=f"{path} line {line}",
            )
        )
    taxonomy = Taxonomy(nodes, name="shopify", version=version)
    if "full_path_en" in header:
        _check_paths(
            path,
            reader_rows=csv.DictReader(io.StringIO(_read_text(path)), delimiter="\t"),
            taxonomy=taxonomy,
        )
    return taxonomy


def _lang_code(lang: str) -> str:
    # "zh_CN" -> "zh": product text is detected by script, not region.
    return lang.split("_")[0].split("-")[0].lower()


def _check_paths(path: Path, reader_rows: csv.DictReader, taxonomy: Taxonomy) -> None:
    for row in reader_rows:
        given = (row.get("full_path_en") or "").strip()
        if not given:
            continue
        cat = taxonomy.get(row["id"].strip())
        if given != cat.path_str:
            raise TaxonomyError(
                f"{path}: line {reader_rows.line_num}: field 'full_path_en' says '{given}' but "
                f"the parent chain gives '{cat.path_str}'; the path and parent_id disagree"
            )


def load_google(path: str | Path, *, version: str | None = None) -> Taxonomy:
    """Google Product Taxonomy with ids: `123 - A > B > C` a line, `#` comments."""
    path = Path(path)
    nodes: list[Node] = []
    id_by_path: dict[str, str] = {}
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if line.startswith("# Google_Product_Taxonomy_Version:") and version is None:
                version = line.split(":", 1)[1].strip()
            continue
        match = _GOOGLE_LINE.match(line)
        if not match:
            raise TaxonomyError(
                f"{path}: line {line_no}: expected 'ID - Level 1 > Level 2', found {line[:80]!r}"
            )
        node_id, path_text = match.groups()
        parts = [p.strip() for p in path_text.split(">")]
        if any(not p for p in parts):
            raise TaxonomyError(f"{path}: line {line_no}: empty level in path {path_text!r}")
        parent_path = PATH_SEPARATOR.join(parts[:-1])
        parent = None
        if parent_path:
            parent = id_by_path.get(parent_path)
            if parent is None:
                raise TaxonomyError(
                    f"{path}: line {line_no}: parent path '{parent_path}' of category {node_id} "
                    "is not defined on an earlier line"
                )
        id_by_path[PATH_SEPARATOR.join(parts)] = node_id
        nodes.append(Node(node_id, parent, {"en": parts[-1]}, source=f"{path} line {line_no}"))
    return Taxonomy(nodes, name="google", version=version)


def load_paths_file(path: str | Path, *, separator: str = PATH_SEPARATOR) -> Taxonomy:
    """One category path a line (`A > B > C`); blank lines and `#` comments are skipped."""
    path = Path(path)
    sep = separator.strip() or separator
    paths: list[list[str]] = []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(sep)]
        if any(not p for p in parts):
            raise TaxonomyError(f"{path}: line {line_no}: empty level in path {line.strip()!r}")
        paths.append(parts)
    if not paths:
        raise TaxonomyError(f"{path}: no category paths found")
    return Taxonomy.from_paths(paths, name=path.stem)


def from_labels(
    labels: Iterable[str], *, separator: str = PATH_SEPARATOR, name: str = "labels"
) -> Taxonomy:
    """The taxonomy implied by a labelled file: every distinct label path and its prefixes."""
    sep = separator.strip() or separator
    paths = {
        tuple(p.strip() for p in str(label).split(sep)) for label in labels if str(label).strip()
    }
    if not paths:
        raise TaxonomyError("no labels to build a taxonomy from")
    return Taxonomy.from_paths(sorted(paths), name=name)


def load_json(path: str | Path) -> Taxonomy:
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise TaxonomyError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    return Taxonomy.from_dict(data)


@lru_cache(maxsize=4)
def load_bundled(name: str) -> Taxonomy:
    """A taxonomy shipped inside the package, by name (see `BUNDLED`)."""
    try:
        filename, kind, version = BUNDLED[name]
    except KeyError:
        raise TaxonomyError(
            f"no bundled taxonomy '{name}'; bundled: {', '.join(sorted(BUNDLED))}"
        ) from None
    ref = resources.files("taxonomist") / "resources" / "taxonomies" / filename
    with resources.as_file(ref) as file:
        if kind == "shopify":
            return load_shopify_tsv(file, version=version)
        return load_google(file, version=version)


def load_taxonomy(spec: str | Path, *, separator: str = PATH_SEPARATOR) -> Taxonomy:
    """Load a named bundled taxonomy or a file, recognising its format.

    Args:
        spec: "shopify", "google", or the path of a `.json` (Taxonomist), `.tsv` (Shopify
            columns) or text file (Google `id - path` lines, or one path a line).
        separator: level separator for plain path files.

    Raises:
        TaxonomyError: unknown name, missing file, or a malformed taxonomy.
    """
    text_spec = str(spec)
    if text_spec.lower() in BUNDLED:
        return load_bundled(text_spec.lower())
    path = Path(spec)
    if not path.exists():
        raise TaxonomyError(
            f"taxonomy '{spec}' is neither a bundled name ({', '.join(sorted(BUNDLED))}) "
            "nor an existing file"
        )
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes[-1:] == [".json"]:
        return load_json(path)
    if suffixes[-1:] == [".tsv"]:
        return load_shopify_tsv(path)
    first = next(
        (
            ln
            for ln in _read_text(path).splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")
        ),
        "",
    )
    if _GOOGLE_LINE.match(first):
        return load_google(path)
    return load_paths_file(path, separator=separator)


def taxonomy_choices() -> Sequence[str]:
    return sorted(BUNDLED)


def same_taxonomy(a: Taxonomy, b: Taxonomy) -> bool:
    """Whether two taxonomies hold the same categories (ids and paths), whatever their names."""
    if a is b:
        return True
    if len(a) != len(b):
        return False
    return all(c.id in b and b.get(c.id).path == c.path for c in a)


def check_model_taxonomy(
    own: Taxonomy, requested: str | Path | Taxonomy | None, *, model: str
) -> None:
    """Refuse a taxonomy asked for alongside a trained model unless it is the model's own.

    A trained model can only predict the categories it was trained on, so a different
    `--taxonomy` would be silently ignored; the CLI, the service and `load_classifier` all
    call this so that none of them ignores it.

    Raises:
        ConfigError: `requested` names or holds a different taxonomy.
    """
    from .errors import ConfigError

    if requested is None or (not isinstance(requested, Taxonomy) and not str(requested).strip()):
        return
    if isinstance(requested, Taxonomy):
        other: Taxonomy | None = requested
        requested = requested.name
    else:
        try:
            other = load_taxonomy(requested)
        except TaxonomyError:
            other = None
    if other is not None and same_taxonomy(own, other):
        return
    raise ConfigError(
        f"the model {model} was trained on its own taxonomy '{own.name}' ({len(own)} "
        f"categories) and predicts only those; --taxonomy {requested} is a different one. "
        f"Drop --taxonomy to use the model, or drop --model to classify zero-shot into "
        f"{requested}"
    )


# Characters that people join path levels with when not " > ".
OTHER_SEPARATORS = ("/", ">", "|", "»", "\\", ";")


def guess_label_separator(
    labels: Iterable[str], separator: str = PATH_SEPARATOR, *, share: float = 0.5
) -> str | None:
    """The separator that `labels` seem to join levels with, when it is not `separator`.

    Returns the most common of `OTHER_SEPARATORS` that splits at least `share` of the labels
    into two or more non-empty levels, provided `separator` itself splits almost none of
    them; None when the labels look fine (or are flat names).
    """
    sep = separator.strip() or separator
    seen = joined = 0
    counts: dict[str, int] = {}
    for label in labels:
        text = str(label).strip()
        if not text:
            continue
        seen += 1
        if sep in text:
            joined += 1
        for other in OTHER_SEPARATORS:
            if other != sep and other in text:
                parts = [p for p in text.split(other) if p.strip()]
                if len(parts) >= 2:
                    counts[other] = counts.get(other, 0) + 1
    if not seen or joined > 0.1 * seen or not counts:
        return None
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] >= share * seen else None
