"""Temperature scaling: one scalar fitted on held-out data so confidences match accuracy."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(logits, temperature))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising negative log-likelihood of `targets` (class indices).

    A golden-section search over log T in [0.05, 20]: NLL is unimodal in T for fixed logits,
    and this needs no optimiser dependency. The lower bound matters: on a small validation
    split with no errors NLL keeps falling as T -> 0, which would make every prediction
    look certain.

    Example:
        >>> fit_temperature(np.array([[4.0, 0.0], [4.0, 0.0]]), np.array([0, 1])) > 1
        True
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    rows = np.arange(len(targets))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits, float(np.exp(log_t)))[rows, targets].mean())

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))
