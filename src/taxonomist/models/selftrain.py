"""Self-training for `fewshot`: the unlabelled part of a partly labelled catalogue.

A model fitted on the few labels pseudo-labels the unlabelled products; the most confident
of them join the labelled ones in the linear member (TF-IDF n-grams + linear SVM), where
the words they share with labelled titles carry the labels further. Whether to do it, and
with how many, is decided on the labelled rows only, out of fold: for each fold, a model
that never saw the fold pseudo-labels the pool, a linear member is fitted on the other
folds' labels plus those pseudo-labels, and the fold is scored. "No pseudo-labels" is one
of the candidates, so a pool that does not help is refused.

Selection is per predicted class (the most confident `share` of each), not one global
threshold: in a long-tailed catalogue the big classes pass a threshold first and crowd the
small ones out.

The labels are a per-category sample (k of each), the catalogue is not: judged on the
labelled rows as they are, cross-validation measures accuracy on a balanced catalogue and
refused pseudo-labels that help on the real one (fashion at 10 a category: out-of-fold
accuracy 0.924 -> 0.918 while the pool's own accuracy rose 0.904 -> 0.915). So the pool
also gives the catalogue's class mix (`catalogue_prior`, estimated from the labels-only
model's predictions on it), the out-of-fold rows are weighted to that mix, and one more
candidate shifts the scores by the log ratio of the two mixes (the Bayes correction for a
prior that differs from the training sample's). The estimate is used only when the same
estimator, run on the labelled rows' out-of-fold predictions (whose mix is known), errs by
less than half the shift it claims; otherwise the rows are unweighted and there is no shift.
Where it is trusted, every pseudo-label candidate is also tried with the teacher's
posteriors shifted to that mix before the pool is labelled: a labelled sample of k a
category makes a small category look as common as a big one, and the pool's doubtful
products drift into the small one.

Measured on fashion at 10 labels a category (labelled sample of the training split, the rest
of it as the pool, scored on the pool's hidden labels): one round with 60% per class took
the pool's accuracy from 0.904 to 0.915; a second and third round lost it again (0.915,
0.912: the model learns its own mistakes), a share of the pseudo-labels in the prototypes
(0.913) and an SVM on their embeddings (0.915, 90 s) added nothing. So: one round, linear
member only.

Confident pseudo-labels teach what the model already knew: its systematic mistakes (on
pricerunner, German titles and bare model numbers read as fridges) are often confident too.
One more candidate spreads the pool's distributions over its nearest-neighbour graph first
(`neighbours`; titles sharing n-grams are products of a kind) and trains on the whole pool's
spread labels; cross-validation weighs it with the others. The spread starts from the
products whose title names the category the members pick, taken as certain
(`anchor_agreed_names`).

Every pseudo-label weighs in the SVM as its probability to the fourth power, scaled to mean
1 (`confidence_weights`): a pseudo-label that the members or its neighbours doubt counts
less than one they agree on. Chosen on training rows held out of the pool, at 10 a category
(`benchmarks/pseudo_label_weights/`; powers 1-8 compared, 4 best or near it): an SVM on
pricerunner's spread labels (USE) went 0.917 -> 0.930 on them, on fashion's 0.899 -> 0.921;
MiniLM-read pricerunner's moved half a point, zh-retail's (where no pseudo-labels are
chosen) within a point either way.

The SVM gives a model-number n-gram one weight among many; the pseudo-labelled pool also
serves as a memory (`pool_memory`), its products nearest a title on rare n-grams voting as
`knn` votes, a member `score_candidate` weighs with the others. Its out-of-fold votes come
from the fold's own pseudo-labels, with the pool's copies of the fold's held-out products
left out (`FewShotConfig.group_folds`), so it is weighed as new products meet it.
"""

from __future__ import annotations

import numpy as np

from ..calibration import fit_temperature, log_softmax
from ..neighbours import spread


def select_confident(pred: np.ndarray, confidence: np.ndarray, share: float) -> np.ndarray:
    """Sorted rows holding the `share` most confident of each predicted class (at least one
    per class predicted)."""
    chosen: list[np.ndarray] = []
    for label in np.unique(pred):
        rows = np.flatnonzero(pred == label)
        keep = max(1, int(round(share * len(rows))))
        chosen.append(rows[np.argsort(-confidence[rows], kind="stable")[:keep]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def confidence_weights(confidence: np.ndarray, power: float) -> np.ndarray:
    """A training weight per pseudo-label: its probability to the `power`, scaled to mean 1
    so that the pseudo-labels as a whole weigh what they would unweighted (a softmax over
    29 departments tops out near 0.05; over 10 categories near 1). Power 0: all equal."""
    if not power or not len(confidence):
        return np.ones(len(confidence))
    weights = np.asarray(confidence, dtype=np.float64) ** power
    mean = weights.mean()
    return weights / mean if np.isfinite(mean) and mean > 0 else np.ones(len(confidence))


def pooled_logp(member_scores, temperatures, weights) -> np.ndarray:
    """Log-probabilities of the members pooled as `fewshot` pools them."""
    return log_softmax(
        sum(w * log_softmax(s, t) for w, s, t in zip(weights, member_scores, temperatures))
    )


def agreed_names(probs: np.ndarray, named: np.ndarray) -> np.ndarray:
    """Rows whose title names exactly one category (`named`: 0/1 per category) that is
    also the row's most probable category in `probs`."""
    return (named.sum(1) == 1) & (named.argmax(1) == probs.argmax(1))


def anchor_agreed_names(probs: np.ndarray, named: np.ndarray) -> np.ndarray:
    """`probs` with each of the `agreed_names` rows set to certainty in its category.

    Two readings agree there: the title's own words, and the members' pooled reading of
    it, mostly prototypes and n-grams (the names hold 0-0.3 of its weight on pricerunner
    and fashion, so the two are not wholly independent). Spreading starts from these rows
    as from labelled ones, and they pull their neighbours (a bare model number sharing
    n-grams with a title that says "fridge freezer"). Only agreement counts: fashion's
    titles name a wrong category nearly a quarter of the time (most titles that say
    "Flats" are labelled Heels), and moving every named row half-way to its name cost
    9-12 points on development rows. Measured at 10 a category on training rows held out
    of the pool, the SVM on the spread labels gained on 10 of 10 draws: pricerunner
    0.02-0.78 points, fashion 0.20-1.23 (`benchmarks/name_anchors.py`). The agreed rows
    were 97-99% right on both sets."""
    agreed = agreed_names(probs, named)
    if not agreed.any():
        return probs
    out = probs.copy()
    out[agreed] = named[agreed]
    return out


def pseudo_labels(
    member_scores,
    temperatures,
    weights,
    graph=None,
    smoothing: float = 0.0,
    bias=None,
    named: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, its probability) per row of the pooled members, their scores
    shifted by `bias` (a log prior ratio) first; with `smoothing`, of their distributions
    smoothed over the pool's neighbour `graph` (`neighbours`), starting from the rows
    whose `named` category the members agree with as certain (`anchor_agreed_names`)."""
    logp = pooled_logp(member_scores, temperatures, weights)
    probs = np.exp(logp if bias is None else log_softmax(logp + bias))
    if smoothing:
        if named is not None:
            probs = anchor_agreed_names(probs, named)
        probs = spread(graph, probs, smoothing)
    return probs.argmax(1), probs.max(1)


def catalogue_prior(logp: np.ndarray, train_prior: np.ndarray, iterations: int = 10) -> np.ndarray:
    """The class mix of the products behind `logp` (a model's log-probabilities, learnt
    under `train_prior`), re-estimated by expectation-maximisation (Saerens et al. 2002): the
    few labels are a per-category sample, the catalogue is long-tailed, and the pool says
    by how much."""
    prior = np.exp(logp).mean(0)
    ratio_base = logp - np.log(train_prior)
    for _ in range(iterations):
        adjusted = log_softmax(ratio_base + np.log(prior + 1e-12))
        prior = np.exp(adjusted).mean(0)
    # no class at zero: one that the pool never picks may still exist
    prior = prior + 1e-3 / len(prior)
    return prior / prior.sum()


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum())


def best_candidate(figures: dict, baseline, score: str):
    """The key of the candidate with the lowest `score` among those whose out-of-fold
    accuracy is no lower than the `baseline` candidate's (`score_candidate` figures); ties
    go to the smaller key (fewer pseudo-labels, less shift)."""
    floor = figures[baseline]["cv_accuracy"] - 1e-12
    eligible = [k for k in figures if figures[k]["cv_accuracy"] >= floor]
    return min(eligible, key=lambda k: (figures[k][score], k))


def score_candidate(
    prototype_logp: np.ndarray,
    linear_oof: np.ndarray,
    y: np.ndarray,
    step: float,
    row_weights: np.ndarray,
    bias: np.ndarray,
    fixed: tuple[np.ndarray, float] | None = None,
    criterion: str = "brier",
    memory_oof: np.ndarray | None = None,
    floor: float | None = None,
) -> dict[str, float | list[float]]:
    """Out-of-fold figures of the prototypes pooled with a linear member (and the pool's
    memory, `memory_oof`, when given) plus a class `bias` (log prior shift): the linear
    member's and the memory's temperatures, and the pooling weights that give the lowest
    `criterion` ("brier" or "log_loss") with each row weighted by `row_weights` (the
    catalogue's class mix over the labelled sample's). `fixed`: a member kept at the weight
    the labels chose (its weighted log-probabilities, that weight); the others share the
    rest. Weights come in the order prototypes, linear, the fixed member, memory.
    `floor`: the labels-only model's out-of-fold accuracy, which a candidate must not fall
    below (`best_candidate`); the mix is chosen among those that keep to it, where any do.
    Otherwise a mix with a lower score but more errors (the memory on zh-retail's 5 a
    category: Brier 0.81 against 0.92, accuracy 0.471 against 0.500) would shut out a
    candidate that another of its mixes would have let in."""
    from .ensemble import simplex_grid

    t_linear = fit_temperature(linear_oof, y)
    members = [prototype_logp, log_softmax(linear_oof, t_linear)]
    t_memory = 1.0
    if memory_oof is not None:
        t_memory = fit_temperature(memory_oof, y)
        members.append(log_softmax(memory_oof, t_memory))
    rows = np.arange(len(y))
    norm = row_weights / row_weights.sum()
    extra, kept = (0.0, 0.0) if fixed is None else fixed
    free = 1.0 - kept
    grid: list[tuple[dict[str, float], np.ndarray, np.ndarray]] = []  # (figures, pooled, w)
    for w in simplex_grid(len(members), step):
        pooled = log_softmax(free * sum(wi * m for wi, m in zip(w, members)) + extra + bias)
        # the Brier score, bounded where log-loss is not: one labelled row the candidate is
        # sure is wrong (a mislabelled example) cannot outweigh the rest
        probs = np.exp(pooled)
        probs[rows, y] -= 1.0
        figures = {
            "log_loss": float(-(norm * pooled[rows, y]).sum()),
            "brier": float((norm * (probs**2).sum(1)).sum()),
            "wrong": float((norm * (pooled.argmax(1) != y)).sum()),
        }
        grid.append((figures, pooled, w))
    # as `fewshot.pool_weights`: no mix that makes more errors than every member alone
    # (with two members, than either end of the grid)
    ceiling = min(g[0]["wrong"] for g in grid if g[2].max() == 1.0) + 1e-12
    allowed = [g for g in grid if g[0]["wrong"] <= ceiling]
    if floor is not None:
        allowed = [g for g in allowed if 1.0 - g[0]["wrong"] >= floor - 1e-12] or allowed
    best, pooled, w = min(allowed, key=lambda g: g[0][criterion])
    right = pooled.argmax(1) == y
    weights = [free * float(w[0]), free * float(w[1])]
    weights += [kept] if fixed is not None else []
    weights += [free * float(w[2])] if memory_oof is not None else []
    return {
        "cv_log_loss": best["log_loss"],
        "cv_brier": best["brier"],
        "cv_accuracy": float((norm * right).sum()),
        "cv_accuracy_unweighted": float(right.mean()),
        "linear_temperature": float(t_linear),
        "memory_temperature": float(t_memory),
        "weights": weights,
    }
