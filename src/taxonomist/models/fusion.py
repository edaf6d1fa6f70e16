"""`fusion`: classify from a product's text and its photo, either of which may be missing.

Two ways to combine, usable alone or together (`mode`):
- late (the default): a text model (any text kind, `linear` by default) and an `image`
  model are trained and calibrated separately; their log-probabilities are pooled with
  weights learned on the validation split. A row without a photo is pooled with a second
  set of weights, learned on the same validation rows with their photos hidden; in `late`
  mode that leaves exactly the text model's opinion.
- early: the two frozen embeddings (MiniLM text, EfficientNet image) meet in a small gated
  MLP. A learned per-unit gate decides how much each modality speaks; when one is missing
  the gate is forced to the other. Trained with modality dropout (images, and more rarely
  texts, hidden at random) so it has seen both kinds of gap before prediction time.
The image member enters the pool as evidence, not as a second posterior: its class prior
(add-one smoothed training label shares) is divided out (`image_prior_correction`), as a
product of experts over conditionally independent views asks. Without this the prior is
counted twice, and the image model, which has seen a handful of photos of a rare class,
talks the title out of rare classes it had right (fashion test, late pooling: leaf macro-F1
0.916 -> 0.932, and lower validation log-loss).
`both` pools the late members with the early network, and stacks: the early
network's text side also gets the text model's class probabilities, out-of-fold for the
training rows (so it learns how far the text model is to be trusted, not how well it
memorised), which lets the photo overrule the title where the two disagree in ways
validation has seen (flats against heels, casual against sports shoes). It adds leaf
accuracy, but its macro-F1 swings with the seed (the early network, trained on few photos of
a rare class, pulls rare classes down too), so `late` is the default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..calibration import log_softmax
from ..errors import ConfigError, DataError
from ..items import Item
from .base import Model, Progress
from .config import check_positive, config_from_dict
from .ensemble import fit_weights
from .loop import NetworkConfig, train_network

if TYPE_CHECKING:
    from .image import ImageModel

logger = logging.getLogger(__name__)
MODES = ("late", "early", "both")


@dataclass(frozen=True)
class FusionConfig(NetworkConfig):
    """Args:
    mode: late, early or both (see the module docstring).
    text_kind, text_config: the late-fusion text model (any text kind and its options).
    image_config: options of the image model (its encoder settings serve early fusion too).
    text_encoder: the sentence encoder of early fusion.
    modality_dropout: chance a training row's image is hidden (half that for its text).
    grid_step: resolution of the pooling-weight search.
    stack_folds: in `both` mode, folds for the out-of-fold text probabilities the early
        network stacks on (0: no stacking).
    image_prior_correction: how much of the image model's log class prior (add-one smoothed
        training counts) is taken off its log-probabilities before pooling (1: all of it).
    The rest: the early-fusion network's (`NetworkConfig`).
    """

    owner: ClassVar[str] = "fusion"

    dropout: float = 0.3
    epochs: int = 40
    patience: int = 5
    mode: str = "late"
    text_kind: str = "linear"
    text_config: dict[str, Any] = field(default_factory=dict)
    image_config: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "minilm"
    modality_dropout: float = 0.3
    grid_step: float = 0.05
    stack_folds: int = 5
    image_prior_correction: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ConfigError(f"fusion.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.text_kind in ("ensemble", "fusion", "image"):
            raise ConfigError(f"fusion.text_kind must be a text kind, got {self.text_kind!r}")
        check_positive("fusion", hidden=self.hidden, grid_step=self.grid_step)
        if self.stack_folds < 0 or self.stack_folds == 1:
            raise ConfigError(f"fusion.stack_folds must be 0 or >= 2, got {self.stack_folds}")
        if not 0 <= self.modality_dropout < 1:
            raise ConfigError("fusion.modality_dropout must be in [0, 1)")
        if not 0 <= self.image_prior_correction <= 1:
            raise ConfigError("fusion.image_prior_correction must be in [0, 1]")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionConfig:
        return config_from_dict(cls, data)


def availability(items: list[Item], late: bool, early: bool) -> np.ndarray:
    """(n, members) 1 where a member has its modality for the row, else 0; members in the
    order [text, image] (late) then [early network]."""
    has_text = np.array([bool(it.text.strip()) for it in items], dtype=np.float64)
    has_image = np.array([bool(it.image) for it in items], dtype=np.float64)
    cols = []
    if late:
        cols += [has_text, has_image]
    if early:
        cols.append(np.ones(len(items)))
    return np.stack(cols, axis=1)


def pool_members(
    logps: list[np.ndarray],
    avail: np.ndarray,
    weights: np.ndarray,
    weights_without_image: np.ndarray,
    late: bool,
) -> np.ndarray:
    """The pooled log-probabilities: a row with a photo uses `weights`, one without it the
    weights learned with the photos hidden. Numpy only: the ONNX runtime pools with it too."""
    has_image = avail[:, 1] > 0 if late else np.ones(len(avail), dtype=bool)
    per_row = np.where(has_image[:, None], weights[None, :], weights_without_image[None, :])
    return pool_with(logps, avail, per_row)


def pool_with(logps: list[np.ndarray], avail: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-row weighted sum of member log-probabilities over the members a row has."""
    w = avail * weights
    # validation rows all had titles, so learned weights may give a photo-only row's
    # members no say at all: then the members it does have weigh equally
    silent = w.sum(1) <= 0
    w[silent] = avail[silent]
    norm = w.sum(1, keepdims=True)
    w = np.divide(w, norm, out=np.zeros_like(w), where=norm > 0)
    return sum(w[:, j : j + 1] * lp for j, lp in enumerate(logps))


def gated_network(text_dim: int, image_dim: int, hidden: int, classes: int, dropout: float):
    import torch
    import torch.nn as nn

    class GatedFusion(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.text = nn.Linear(text_dim, hidden)
            self.image = nn.Linear(image_dim, hidden)
            self.gate = nn.Linear(text_dim + image_dim, hidden)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, classes))

        def forward(self, t, i, has_text, has_image):
            mt, mi = has_text[:, None], has_image[:, None]
            t, i = self.drop(t) * mt, self.drop(i) * mi
            g = torch.sigmoid(self.gate(torch.cat([t, i], dim=1)))
            # a missing modality gets no say, whatever the gate learned
            g = mt * (mi * g + (1 - mi))
            return self.out(g * self.text(t) + (1 - g) * self.image(i))

    return GatedFusion()


class FusionModel(Model):
    kind = "fusion"
    config_class = FusionConfig
    uses_images = True

    def __init__(self, taxonomy, config: FusionConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self.members: list[Model] = []  # late: [text model, image model]
        self._net: Any = None  # early
        self._text_encoder: Any = None
        self._saved: Path | None = None  # the directory loaded from: encoder files live there
        self._expected_text: dict[str, Any] | None = None  # early fusion's, from the manifest
        self._image_part: ImageModel | None = None
        self.weights = np.ones(0)
        self.weights_without_image = np.ones(0)
        self.best_epoch: int | None = None
        self._refit_epochs: int | None = None

    # -- the parts -------------------------------------------------------------------------
    @property
    def uses_late(self) -> bool:
        return self.config.mode in ("late", "both")

    @property
    def uses_early(self) -> bool:
        return self.config.mode in ("early", "both")

    @property
    def stacks(self) -> bool:
        return self.config.mode == "both" and self.config.stack_folds >= 2

    def _image_member(self) -> ImageModel:
        from .image import ImageModel

        for member in self.members:
            if isinstance(member, ImageModel):
                return member
        if self._image_part is None:  # early fusion alone: only its encoder is used
            from .image import ImageConfig

            self._image_part = ImageModel(
                self.taxonomy, ImageConfig.from_dict(self.config.image_config)
            )
            self._image_part.use_settings_of(self)
        return self._image_part

    @property
    def text_encoder(self) -> Any:
        return self.lazy("_text_encoder", self._build_text_encoder)

    def _build_text_encoder(self) -> Any:
        from ..encoders import build_cached_encoder, encoder_device
        from .head import check_encoder

        spec = self.config.text_encoder
        # a loaded model encodes with the files it carries (e.g. the int8 graph), so its
        # vectors do not depend on the library versions of the machine it runs on
        encoder = build_cached_encoder(
            spec,
            saved=self._saved,
            cache=self.embedding_cache(),
            device=encoder_device(spec, self.device),
        )
        if self._expected_text is not None:
            check_encoder(encoder, self._expected_text, self._saved)
        return encoder

    def _early_inputs(
        self,
        items: list[Item],
        text_probs: np.ndarray | None = None,
        image: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[Any, Any, Any, Any]:
        """(text side, image side, has-text, has-image) tensors for the gated network.

        When stacking, the text side is the sentence embedding followed by the text model's
        class probabilities: `text_probs` (out-of-fold, in training) or the model's own.
        `image` is the image model's `embed` output when the caller has it already.
        """
        import torch

        from ..encoders import Role

        text_ok = np.array([bool(it.text.strip()) for it in items])
        texts = [it.text if ok else "" for it, ok in zip(items, text_ok)]
        t = self.text_encoder.encode(texts, role=Role.PRODUCT, batch_size=128)
        if self.stacks:
            if text_probs is None:
                text_probs = self.members[0].predict_proba(texts)
            t = np.concatenate([t, text_probs.astype(np.float32)], axis=1)
        i, image_ok = image if image is not None else self._image_member().embed(items)
        return (
            torch.from_numpy(t * text_ok[:, None].astype(np.float32)),
            torch.from_numpy(i),
            torch.from_numpy(text_ok.astype(np.float32)),
            torch.from_numpy(image_ok.astype(np.float32)),
        )

    def _availability(self, items: list[Item]) -> np.ndarray:
        return availability(items, self.uses_late, self.uses_early)

    def _member_logp(self, items: list[Item]) -> list[np.ndarray]:
        """Each member's log-probabilities; the text model's scores and the photos'
        embeddings are computed once and shared with the early network."""
        out: list[np.ndarray] = []
        text_probs = image = None
        if self.members:  # late: [text model, image model]
            text_model, image_model = self.members[0], self._image_member()
            text_logp = log_softmax(
                text_model._logits(text_model.prepare(items)), text_model.temperature
            )
            image = image_model.embed(items)
            image_logits = image_model.logits_from(*image)
            image_logp = log_softmax(image_logits, image_model.temperature)
            if image_model.log_prior is not None:
                image_logp = image_logp - self.config.image_prior_correction * image_model.log_prior
            out += [text_logp, image_logp]
            text_probs = np.exp(text_logp)
        if self.uses_early:
            out.append(log_softmax(self._early_logits(items, text_probs, image)))
        return out

    def _pool(self, logps: list[np.ndarray], avail: np.ndarray) -> np.ndarray:
        return pool_members(logps, avail, self.weights, self.weights_without_image, self.uses_late)

    # -- training --------------------------------------------------------------------------
    def _fit(self, items, y, valid_items, valid_y, progress: Progress | None):
        from . import model_class

        if not any(it.image for it in items):
            raise DataError(
                "fusion needs images: no training row has a usable one (give --image-column)"
            )
        history: list[dict[str, float]] = []
        labels = [self.labels[i] for i in y]
        valid_labels = [self.labels[i] for i in valid_y] if valid_items else None
        if self._refit_epochs is None:
            self.members = []
            if self.uses_late:
                text_cls = model_class(self.config.text_kind)
                text_model = text_cls(
                    self.taxonomy, text_cls.config_class.from_dict(self.config.text_config)
                )
                for member in (text_model, self._image_member()):
                    member.use_settings_of(self)  # members run where their fusion runs
                    report = member.fit(items, labels, valid_items, valid_labels, progress=progress)
                    self.members.append(member)
                    history.append(
                        {f"{member.kind}_valid_{k}": v for k, v in report.valid_metrics.items()
                         if k in ("accuracy", "log_loss")}
                    )  # fmt: skip
        if self.uses_early:
            history += self._fit_early(items, y, valid_items, valid_y, progress)
        if valid_items and self._refit_epochs is None:
            history.append(self._learn_weights(valid_items, valid_y))
        elif not len(self.weights):
            self.weights = np.full(len(self.members) + self.uses_early, 1.0)
            self.weights_without_image = self.weights.copy()
        return history

    def _fit_early(self, items, y, valid_items, valid_y, progress):
        import torch

        cfg = self.config
        oof = self._out_of_fold_text_probs(items, y, progress) if self.stacks else None
        t, i, mt, mi = self._early_inputs(items, oof)
        valid = self._early_inputs(valid_items) if valid_items else None
        self._net = gated_network(t.shape[1], i.shape[1], cfg.hidden, len(self.labels), cfg.dropout)
        gen = torch.Generator().manual_seed(cfg.seed)

        def forward(idx, training):
            if not training:
                return self._net(*valid)
            rows = torch.from_numpy(idx)
            bt, bi, bmt, bmi = t[rows], i[rows], mt[rows], mi[rows]
            # modality dropout: hide images, and (rarer) texts of rows that have both
            drop_image = torch.rand(len(rows), generator=gen) < cfg.modality_dropout
            both = (bmt * bmi) > 0
            drop_text = both & ~drop_image
            drop_text &= torch.rand(len(rows), generator=gen) < cfg.modality_dropout / 2
            bmi = bmi * (~drop_image).float()
            bmt = bmt * (~drop_text).float()
            return self._net(bt, bi, bmt, bmi)

        history, best = train_network(
            self._net, forward, y, cfg, len(self.labels),
            valid_y=valid_y if valid else None, epochs=self._refit_epochs, progress=progress,
        )  # fmt: skip
        if self._refit_epochs is None:
            self.best_epoch = best
        return [{"early_" + k: v for k, v in row.items()} for row in history]

    def _out_of_fold_text_probs(self, items: list[Item], y: np.ndarray, progress) -> np.ndarray:
        """Each training row's text probabilities from a text model that never saw it (nor
        any row with the same title), calibrated with the full text model's temperature."""
        from ..calibration import softmax
        from ..crossval import cross_val_proba

        text_model = self.members[0]
        oof = cross_val_proba(
            text_model.kind, text_model.config, [it.text for it in items],
            [self.labels[i] for i in y], self.config.stack_folds, taxonomy=self.taxonomy,
            seed=self.config.seed, progress=progress,
        )  # fmt: skip
        return softmax(oof.logits, text_model.temperature)

    def _learn_weights(self, valid_items, valid_y) -> dict[str, float]:
        self.weights, loss = self._search_weights(valid_items, valid_y)
        without = [Item(it.text, None) for it in valid_items]
        self.weights_without_image, loss_without = self._search_weights(without, valid_y)
        return {
            "pool_valid_log_loss": loss,
            "pool_valid_log_loss_without_image": loss_without,
            **self._named_weights(),
        }

    def _search_weights(self, items: list[Item], y: np.ndarray) -> tuple[np.ndarray, float]:
        """The simplex point minimising validation log-loss of the pooled prediction."""
        logps = self._member_logp(items)
        avail = self._availability(items)

        def pool(w: np.ndarray) -> np.ndarray:
            return log_softmax(pool_with(logps, avail, w[None, :]))

        # members no row can use (the image model, once photos are hidden) get weight 0
        usable = np.flatnonzero(avail.any(0)).tolist()
        best = fit_weights(logps, y, self.config.grid_step, pool=pool, usable=usable)
        return best, float(-pool(best)[np.arange(len(y)), y].mean())

    def _named_weights(self) -> dict[str, float]:
        names = (["text", "image"] if self.uses_late else []) + (
            ["early"] if self.uses_early else []
        )
        out = {f"weight_{n}": float(w) for n, w in zip(names, self.weights)}
        out.update(
            {f"weight_{n}_without_image": float(w)
             for n, w in zip(names, self.weights_without_image)}
        )  # fmt: skip
        return out

    def _refit(self, items, y, progress):
        labels = [self.labels[i] for i in y]
        for member in self.members:
            member.refit_full(items, labels, progress=progress)
        if self.uses_early:
            self._refit_epochs = self.best_epoch or self.config.epochs
            try:
                self._fit_early(items, y, None, None, progress)
            finally:
                self._refit_epochs = None

    # -- prediction and persistence --------------------------------------------------------
    def _early_logits(
        self,
        items: list[Item],
        text_probs: np.ndarray | None = None,
        image: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        import torch

        inputs = self._early_inputs(items, text_probs, image)
        with torch.no_grad():
            return self._net(*inputs).numpy().astype(np.float64)

    def _logits(self, items):
        if self.config.mode == "early":
            return self._early_logits(items)
        return self._pool(self._member_logp(items), self._availability(items))

    def _manifest_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "weights": [float(w) for w in self.weights],
            "weights_without_image": [float(w) for w in self.weights_without_image],
            "named_weights": self._named_weights(),
            "members": [f"members/{i}-{m.kind}" for i, m in enumerate(self.members)],
            "best_epoch": self.best_epoch,
        }
        if self.uses_early:
            extra["early"] = {
                "text_encoder": self.text_encoder.name,
                "text_encoder_files": sorted(self.text_encoder.files()),
                "text_dim": self.text_encoder.dim + (len(self.labels) if self.stacks else 0),
                "image_encoder": self._image_member().encoder.name,
                "image_dim": self._image_member().encoder.dim,
            }
        return extra

    def _save(self, directory: Path) -> None:
        import shutil

        from safetensors.torch import save_file

        if self.uses_early:  # e.g. the int8 graph: the vectors the network was trained on
            for name, source in self.text_encoder.files().items():
                shutil.copyfile(source, directory / name)
        for i, member in enumerate(self.members):
            member.save(directory / "members" / f"{i}-{member.kind}")
        if self._net is not None:
            save_file(
                {k: v.contiguous() for k, v in self._net.state_dict().items()},
                str(directory / "fusion.safetensors"),
            )

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        from .base import load_model

        self.weights = np.array(manifest["weights"], dtype=np.float64)
        self.weights_without_image = np.array(manifest["weights_without_image"], dtype=np.float64)
        self.best_epoch = manifest.get("best_epoch")
        self._saved = directory
        self.members = [
            load_model(
                directory / sub, self.device, cache_dir=self.cache_dir, use_cache=self.use_cache
            )
            for sub in manifest["members"]
        ]
        if self.uses_early:
            early = manifest["early"]
            self._expected_text = {
                "encoder": early.get("text_encoder"),
                "embedding_dim": int(early["text_dim"]) - (len(self.labels) if self.stacks else 0),
            }
            cfg = self.config
            self._net = gated_network(
                int(early["text_dim"]), int(early["image_dim"]), cfg.hidden, len(self.labels),
                cfg.dropout,
            )  # fmt: skip
            self._net.load_state_dict(load_file(str(directory / "fusion.safetensors")))
            self._net.eval()
