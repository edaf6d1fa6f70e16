"""The models a server holds: loaded once, swapped atomically when the store's pointer moves.

With a store, a watcher reads each name's current pointer every `reload_interval_s` (one
small JSON file) and, when it moved, loads the new version in a thread while the old one keeps
serving, then swaps the reference: a request sees the old model or the new one, never neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TaxonomistError
from .batching import MicroBatcher
from .metrics import Metrics
from .problems import ApiProblem
from .settings import ApiSettings

logger = logging.getLogger(__name__)

Loader = Callable[[Path], Any]


@dataclass(frozen=True)
class Served:
    """One loaded model version. `path` is its directory (None when handed in loaded)."""

    name: str
    classifier: Any
    path: Path | None
    load_seconds: float | None

    @property
    def identity(self) -> dict[str, Any]:
        ident = getattr(self.classifier, "identity", None)
        if ident is None:
            return {}
        return dict(ident.as_dict()) if hasattr(ident, "as_dict") else dict(vars(ident))

    @property
    def version(self) -> str | None:
        version = self.identity.get("version")
        if version:
            return str(version)
        return self.path.name if self.path is not None else None


def _default_loader(path: Path) -> Any:
    from ..classifier import load_classifier

    return load_classifier(path, warm=True)


class ModelRegistry:
    """Name -> served model, plus one micro-batcher per name."""

    def __init__(
        self,
        settings: ApiSettings,
        metrics: Metrics,
        *,
        classifiers: Mapping[str, Any] | None = None,
        store: Any = None,
        loader: Loader | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.loader = loader or _default_loader
        self.store = store
        self._served: dict[str, Served] = {}
        self._expected: dict[str, Path | None] = {}
        self._failed: dict[str, str] = {}
        self._batchers: dict[str, MicroBatcher] = {}
        self._tasks: list[asyncio.Task] = []
        for name, clf in (classifiers or {}).items():
            self._install(Served(name, clf, None, None))
        if settings.model is not None and settings.served_name not in self._served:
            self._expected[str(settings.served_name)] = Path(settings.model)
        if self.store is None and settings.store is not None:
            from ..store import ModelStore

            self.store = ModelStore(settings.store)

    # -- lookup -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted({*self._served, *self._expected, *self._failed})

    @property
    def ready(self) -> bool:
        return not self._expected and not self._failed and bool(self._served)

    def status(self) -> dict[str, bool]:
        return {name: name in self._served for name in self.names()}

    def is_served(self, name: str) -> bool:
        return name in self._served

    def get(self, name: str) -> Served:
        served = self._served.get(name)
        if served is not None:
            return served
        if name in self._expected:
            raise ApiProblem(503, f"model '{name}' is still loading", headers={"Retry-After": "5"})
        if name in self._failed:
            raise ApiProblem(503, f"model '{name}' failed to load: {self._failed[name]}")
        known = ", ".join(self.names()) or "none"
        raise ApiProblem(404, f"no model named '{name}'; served models: {known}")

    def batcher(self, name: str) -> MicroBatcher:
        self.get(name)
        return self._batchers[name]

    # -- loading ------------------------------------------------------------------------------
    def serve(self, name: str, classifier: Any) -> None:
        """Serve an already-loaded classifier under `name` (replacing any model of that name)."""
        self._install(Served(name, classifier, None, None))

    def _install(self, served: Served) -> None:
        # one reference assignment: a concurrent reader sees the old or the new, never neither
        self._served[served.name] = served
        self._expected.pop(served.name, None)
        self._failed.pop(served.name, None)
        if served.name not in self._batchers:
            name = served.name

            def current() -> Any:  # the classifier served now, after any reload
                return self._served[name].classifier

            self._batchers[name] = MicroBatcher(
                name,
                current,
                self.metrics,
                max_wait_s=self.settings.batch_wait_ms / 1000,
                max_items=self.settings.batch_max_items,
            )
        self.metrics.ready.labels(served.name).set(1)
        if served.load_seconds is not None:
            self.metrics.load_seconds.labels(served.name).set(served.load_seconds)
            self.metrics.loads.labels(served.name).inc()

    async def _load(self, name: str, path: Path) -> None:
        started = time.perf_counter()
        try:
            clf = await asyncio.to_thread(self.loader, path)
        except (TaxonomistError, OSError) as exc:
            if name in self._served:
                logger.error(
                    "model %s: cannot load %s, still serving the old one: %s", name, path, exc
                )
            else:
                logger.error("model %s: cannot load %s: %s", name, path, exc)
                self._expected.pop(name, None)
                self._failed[name] = str(exc)
            return
        seconds = time.perf_counter() - started
        self._install(Served(name, clf, path, seconds))
        logger.info("model %s: loaded %s in %.2f s", name, path, seconds)

    def _store_pointers(self) -> dict[str, Path]:
        pointers: dict[str, Path] = {}
        for name in self.store.names():
            try:
                pointers[name] = Path(self.store.current(name))
            except TaxonomistError as exc:  # a name with no version yet: nothing to serve
                logger.debug("store: %s has no current version (%s)", name, exc)
        return pointers

    async def load_all(self) -> None:
        """Load everything expected: the --model directory and every name in the store."""
        if self.store is not None:
            pointers = await asyncio.to_thread(self._store_pointers)
            for name, pointer in pointers.items():
                self._expected.setdefault(name, pointer)
        for name, path in list(self._expected.items()):
            if path is not None:
                await self._load(name, path)

    async def refresh(self) -> list[str]:
        """Load whatever the store's pointers now name; returns the names that changed."""
        if self.store is None:
            return []
        changed = []
        pointers = await asyncio.to_thread(self._store_pointers)
        for name, path in pointers.items():
            served = self._served.get(name)
            if served is None or served.path != path:
                await self._load(name, path)
                if self._served.get(name) is not served:
                    changed.append(name)
        return changed

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must outlive a bad store state
                logger.exception("store watcher")

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._start_and_watch()))

    async def _start_and_watch(self) -> None:
        await self.load_all()
        if self.store is not None:
            await self._watch()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # shutting down
                await task
        self._tasks.clear()
        for batcher in self._batchers.values():
            await batcher.stop()
