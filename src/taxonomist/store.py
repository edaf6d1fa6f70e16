"""A versioned model store: many versions per name, one current, switched atomically.

Layout under the store's root:

    <name>/versions/<version>/     a model directory; never modified once it is there
    <name>/current.json            {"version": ..., "history": [older current versions]}
    <name>/.lock                   serialises writers (promote, rollback, add)

A reader resolves `current.json` and opens that version's directory. The pointer is
replaced with `os.replace` (atomic on POSIX) and a version directory only appears once it is
complete (built beside it, then renamed in), so a reader sees the old or the new model,
never a missing or half-written one. Promote and rollback only move the pointer.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .data.paths import apply_umask, current_umask
from .errors import ConfigError, ModelError
from .persistence import MANIFEST, model_identity, read_manifest

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CURRENT = "current.json"


@dataclass(frozen=True)
class VersionInfo:
    """One stored version, as `models list` shows it."""

    name: str
    version: str
    path: Path
    created_at: str | None
    kind: str | None
    parent: str | None
    data_digest: str | None
    valid_metrics: dict[str, float] = field(default_factory=dict)
    current: bool = False
    sequence: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "created_at": self.created_at,
            "kind": self.kind,
            "parent": self.parent,
            "data_digest": self.data_digest,
            "valid_metrics": self.valid_metrics,
            "current": self.current,
        }


def file_digest(paths: Sequence[str | Path]) -> str:
    """sha256 of one or more files' bytes, in order: a training data fingerprint."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


class ModelStore:
    """Versioned model directories under one folder.

    Example:
        >>> store = ModelStore("models")                          # doctest: +SKIP
        >>> v = store.add("products", "/tmp/new-model")           # doctest: +SKIP
        >>> store.promote("products", v); store.current("products")  # doctest: +SKIP
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading --------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "versions").is_dir())

    def current_version(self, name: str) -> str | None:
        """The current version id of `name`, or None when it has none yet."""
        pointer = self._dir(name) / CURRENT
        try:
            data = json.loads(pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{pointer}: unreadable current-version pointer ({exc})") from None
        return str(data["version"])

    def current(self, name: str) -> Path:
        """The directory of `name`'s current version."""
        self._check_name(name)
        if not self._dir(name).is_dir():
            known = ", ".join(self.names()) or "none"
            raise ModelError(f"no model named '{name}' in store {self.root} (names: {known})")
        version = self.current_version(name)
        if version is None:
            raise ModelError(f"model '{name}' in store {self.root} has no current version")
        return self.path(name, version)

    def path(self, name: str, version: str) -> Path:
        path = self._dir(name) / "versions" / version
        if not (path / MANIFEST).is_file():
            raise ModelError(f"model '{name}' has no version '{version}' in store {self.root}")
        return path

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of `name`, oldest first."""
        self._check_name(name)
        base = self._dir(name) / "versions"
        if not base.is_dir():
            raise ModelError(f"no model named '{name}' in store {self.root}")
        current = self.current_version(name)
        infos = [self._info(name, p, current) for p in base.iterdir() if (p / MANIFEST).is_file()]
        return sorted(infos, key=lambda v: (v.sequence, v.created_at or "", v.version))

    def info(self, name: str, version: str | None = None) -> VersionInfo:
        version = version or self.current_version(name)
        if version is None:
            raise ModelError(f"model '{name}' in store {self.root} has no current version")
        return self._info(name, self.path(name, version), self.current_version(name))

    def history(self, name: str) -> list[str]:
        """Earlier current versions, most recent last (what `rollback` returns to)."""
        pointer = self._dir(name) / CURRENT
        if not pointer.exists():
            return []
        return list(json.loads(pointer.read_text(encoding="utf-8")).get("history", []))

    # -- writing --------------------------------------------------------------------------
    def add(
        self,
        name: str,
        model_dir: str | Path,
        *,
        parent: str | None = None,
        data_digest: str | None = None,
        extra: dict[str, Any] | None = None,
        promote: bool | None = None,
        move: bool = False,
    ) -> str:
        """Store a saved model directory as a new version of `name`; return its version id.

        The first version of a name becomes current; later ones only when `promote` is
        true (None: only if there is no current version). Its manifest gains a `store`
        section: name, version, parent version, training-data digest and `extra`.
        `move=True` moves `model_dir` in instead of copying it.
        """
        self._check_name(name)
        source = Path(model_dir)
        version, _ = model_identity(source)
        base = self._dir(name) / "versions"
        base.mkdir(parents=True, exist_ok=True)
        with self._locked(name):
            if (base / version).exists():
                raise ModelError(f"model '{name}' already has a version '{version}'")
            staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=base))
            try:
                target = staging / "model"
                if move:
                    shutil.move(str(source), target)
                else:
                    shutil.copytree(source, target)
                manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
                manifest["store"] = {
                    "name": name,
                    "version": version,
                    # the order versions were added in: two trained within one second
                    # share a creation time
                    "sequence": 1 + sum(1 for p in base.iterdir() if (p / MANIFEST).is_file()),
                    "parent": parent,
                    "data_digest": data_digest,
                    "added_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    **(extra or {}),
                }
                (target / MANIFEST).write_text(
                    json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
                )
                apply_umask(target)  # mkdtemp makes 0700; teammates and servers read it
                os.replace(target, base / version)  # complete before it is visible
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            if promote or (promote is None and self.current_version(name) is None):
                self._point(name, version)
        return version

    def promote(self, name: str, version: str) -> None:
        """Make `version` the current one (the previous current goes on the history)."""
        with self._locked(name):
            self.path(name, version)
            self._point(name, version)

    def rollback(self, name: str) -> str:
        """Return to the version that was current before this one; return its id."""
        with self._locked(name):
            history = self.history(name)
            if not history:
                raise ModelError(f"model '{name}' has no earlier version to roll back to")
            previous = history[-1]
            self._write_pointer(name, previous, history[:-1])
            return previous

    # -- internals ------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.root / name

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ConfigError(
                f"model name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting "
                "with a letter or digit"
            )

    def _point(self, name: str, version: str) -> None:
        current = self.current_version(name)
        history = self.history(name)
        if current is not None and current != version:
            history.append(current)
        self._write_pointer(name, version, history)

    def _write_pointer(self, name: str, version: str, history: list[str]) -> None:
        directory = self._dir(name)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".current.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": version, "history": history[-100:]}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, directory / CURRENT)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        directory = self._dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _info(self, name: str, path: Path, current: str | None) -> VersionInfo:
        manifest = read_manifest(path)
        stored = manifest.get("store", {})
        return VersionInfo(
            name=name,
            version=path.name,
            path=path,
            created_at=manifest.get("created_at"),
            kind=manifest.get("kind"),
            parent=stored.get("parent"),
            data_digest=stored.get("data_digest"),
            valid_metrics=dict(manifest.get("training", {}).get("valid_metrics", {})),
            current=path.name == current,
            sequence=int(stored.get("sequence", 0)),
        )
