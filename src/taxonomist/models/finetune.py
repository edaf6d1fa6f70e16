"""`finetune`: a transformer encoder fine-tuned end to end with a classification head.

Full fine-tuning or LoRA (peft); AdamW with linear warm-up and decay, dropout, weight decay,
gradient clipping, early stopping on the validation split, class-weighted loss, and optional
adversarial training on the word embeddings (FGM, or PGD with a few projected steps). Trains
and predicts on `self.device` (a GPU under "auto" when torch sees one).
Saved with `save_pretrained` (safetensors); LoRA adapters are merged first so loading needs
no peft.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import resolve_device
from ..errors import ConfigError, ModelError
from .base import Model, Progress
from .config import check_positive, config_from_dict
from .loop import EarlyStopping, class_weights

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """Args:
    base: "minilm" (the packaged all-MiniLM-L6-v2) or a transformers/sentence-transformers
        directory or hub name.
    peft: None for full fine-tuning, or "lora".
    lora_r, lora_alpha, lora_dropout: LoRA settings.
    adversarial: None, "fgm" or "pgd"; epsilon is the perturbation size on embeddings.
    max_length: tokens kept per text (product titles are short).
    patience: stop once this many epochs in a row have not lowered the validation loss (the
        meaning every network kind gives it, `loop.EarlyStopping`).
    """

    base: str = "minilm"
    peft: str | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    epochs: int = 3
    batch_size: int = 32
    max_length: int = 48
    dropout: float = 0.1
    patience: int = 2
    balance: bool = False
    adversarial: str | None = None
    epsilon: float = 1.0
    pgd_steps: int = 3
    max_steps: int | None = None
    seed: int = 13

    def __post_init__(self) -> None:
        check_positive(
            "finetune",
            lr=self.lr,
            head_lr=self.head_lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            max_length=self.max_length,
            epsilon=self.epsilon,
            pgd_steps=self.pgd_steps,
            lora_r=self.lora_r,
            patience=self.patience,
        )
        if self.peft not in (None, "lora"):
            raise ConfigError(f"finetune.peft must be None or 'lora', got {self.peft!r}")
        if self.adversarial not in (None, "fgm", "pgd"):
            raise ConfigError(
                f"finetune.adversarial must be None, 'fgm' or 'pgd', got {self.adversarial!r}"
            )
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"finetune.warmup must be in [0, 1), got {self.warmup}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        return config_from_dict(cls, data)


def _base_path(base: str) -> str:
    if base.lower() == "minilm":
        from ..encoders.sentence import packaged_minilm_path

        return str(packaged_minilm_path())
    return base


class _Adversary:
    """Perturbs the word-embedding matrix along the loss gradient, then restores it."""

    def __init__(self, embeddings: Any, epsilon: float) -> None:
        self.weight = embeddings.weight
        self.epsilon = epsilon
        self.backup: Any = None

    def attack(self, step_size: float, project: bool) -> None:
        import torch

        grad = self.weight.grad
        if grad is None:
            return
        if self.backup is None:
            self.backup = self.weight.data.clone()
        norm = torch.norm(grad)
        if norm == 0 or torch.isnan(norm):
            return
        self.weight.data.add_(step_size * grad / norm)
        if project:  # PGD: stay within the epsilon ball around the clean weights
            delta = self.weight.data - self.backup
            if torch.norm(delta) > self.epsilon:
                self.weight.data = self.backup + self.epsilon * delta / torch.norm(delta)

    def restore(self) -> None:
        if self.backup is not None:
            self.weight.data = self.backup
            self.backup = None


class FinetuneModel(Model):
    kind = "finetune"
    config_class = FinetuneConfig

    def __init__(self, taxonomy, config: FinetuneConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self._net: Any = None
        self._tok: Any = None
        self._device = "cpu"  # self.device resolved ("auto" -> cuda or cpu) when built

    def _load_base(self, path: str, classes: int) -> None:
        try:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError:
            raise ModelError(
                "fine-tuning needs transformers; pip install 'taxonomist[text]'"
            ) from None
        cfg = self.config
        try:
            self._tok = AutoTokenizer.from_pretrained(path)
            self._net = AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=classes,
                hidden_dropout_prob=cfg.dropout,
                attention_probs_dropout_prob=cfg.dropout,
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load transformer '{path}': {exc}") from None

    def _batches(self, texts: list[str], order: np.ndarray):
        size = self.config.batch_size
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            enc = self._tok(
                [texts[i] for i in idx],
                truncation=True,
                max_length=self.config.max_length,
                padding=True,
                return_tensors="pt",
            )
            yield idx, enc.to(self._device)

    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        import torch
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        classes = len(self.labels)
        self._load_base(_base_path(cfg.base), classes)
        self._device = resolve_device(self.device)
        net = self._net.to(self._device)
        if cfg.peft == "lora":
            try:
                from peft import LoraConfig, TaskType, get_peft_model
            except ImportError:
                raise ModelError(
                    "--peft lora needs peft; pip install 'taxonomist[train]'"
                ) from None
            net = get_peft_model(
                net,
                LoraConfig(
                    task_type=TaskType.SEQ_CLS,
                    r=cfg.lora_r,
                    lora_alpha=cfg.lora_alpha,
                    lora_dropout=cfg.lora_dropout,
                    target_modules=["query", "value"],
                ),
            )
        head_names = ("classifier",)
        head = [
            p
            for n, p in net.named_parameters()
            if p.requires_grad and any(h in n for h in head_names)
        ]
        body = [
            p
            for n, p in net.named_parameters()
            if p.requires_grad and not any(h in n for h in head_names)
        ]
        opt = torch.optim.AdamW(
            [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}],
            weight_decay=cfg.weight_decay,
        )
        per_epoch = math.ceil(len(texts) / cfg.batch_size)
        total = (
            cfg.epochs * per_epoch
            if cfg.max_steps is None
            else min(cfg.max_steps, cfg.epochs * per_epoch)
        )
        sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total), total)
        weight = torch.from_numpy(class_weights(y, classes)) if cfg.balance else None
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight).to(self._device)
        targets = torch.from_numpy(y).to(self._device)
        adversary = (
            _Adversary(self._net.get_input_embeddings(), cfg.epsilon) if cfg.adversarial else None
        )
        history: list[dict[str, float]] = []
        stopper, step = EarlyStopping(cfg.patience), 0
        for epoch in range(1, cfg.epochs + 1):
            net.train()
            running, seen = 0.0, 0
            for idx, enc in self._batches(texts, rng.permutation(len(texts))):
                batch_y = targets[torch.from_numpy(idx).to(self._device)]
                loss = loss_fn(net(**enc).logits, batch_y)
                loss.backward()
                if adversary is not None:
                    steps = 1 if cfg.adversarial == "fgm" else cfg.pgd_steps
                    size = cfg.epsilon if cfg.adversarial == "fgm" else cfg.epsilon / steps
                    for k in range(steps):
                        adversary.attack(size, project=cfg.adversarial == "pgd")
                        adv_loss = loss_fn(net(**enc).logits, batch_y)
                        if k < steps - 1:  # only the last step's gradient is kept
                            opt.zero_grad()
                            adv_loss.backward(retain_graph=False)
                        else:
                            adv_loss.backward()
                    adversary.restore()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                running += loss.item() * len(idx)
                seen += len(idx)
                step += 1
                if progress:
                    progress("step", step, total)
                if step >= total:
                    break
            row = {"epoch": epoch, "train_loss": running / max(seen, 1)}
            if valid_texts:
                logits = self._logits(valid_texts)
                row["valid_loss"] = float(
                    torch.nn.functional.cross_entropy(
                        torch.from_numpy(logits), torch.from_numpy(valid_y)
                    )
                )
                row["valid_accuracy"] = float((logits.argmax(1) == valid_y).mean())
                stopper.update(epoch, row["valid_loss"], net)
            history.append(row)
            if progress:
                progress("epoch", epoch, cfg.epochs)
            if stopper.should_stop or step >= total:
                break
        stopper.restore(net)
        if cfg.peft == "lora":
            self._net = net.merge_and_unload()
        self._net.eval()
        return history

    def _logits(self, texts):
        import torch

        self._net.eval()
        out = []
        with torch.no_grad():
            # sort by length so each batch pads little; restore order after
            order = np.argsort([len(t) for t in texts], kind="stable")
            for idx, enc in self._batches(texts, order):
                out.append((idx, self._net(**enc).logits.float().cpu().numpy()))
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for idx, values in out:
            logits[idx] = values
        return logits

    def _manifest_extra(self) -> dict[str, Any]:
        return {"base_model": self.config.base}

    def _save(self, directory: Path) -> None:
        target = directory / "transformer"
        self._net.save_pretrained(str(target), safe_serialization=True)
        self._tok.save_pretrained(str(target))

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        self._load_base(str(directory / "transformer"), len(self.labels))
        self._device = resolve_device(self.device)
        self._net.to(self._device).eval()
