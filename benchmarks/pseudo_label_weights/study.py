"""Step 2 of the pseudo-label weighting study: from step 1's dump (`dump.py`), refit the
linear member on the pool's pseudo-labels weighted in several ways and score it alone and
pooled with the model's other members (its weights, temperatures and class bias), on the
held-out training rows (dev: the figures that chose) and the test rows (scored only).

Usage: .venv/bin/python benchmarks/pseudo_label_weights/study.py /tmp/zx/dump-pricerunner-use-10
The script as run in the eighth session (its printout is quoted in docs/benchmarks.md).
"""

import sys

import numpy as np
import scipy.sparse as sp
from sklearn.svm import LinearSVC

from taxonomist.calibration import log_softmax
from taxonomist.models.selftrain import select_confident
from taxonomist.neighbours import spread

p = sys.argv[1]


def L(s):
    return sp.load_npz(f"{p}-{s}.npz")


x_lab, x_pool, graph = L("xlab"), L("xpool"), L("graph")
A = dict(np.load(p + ".npz"))
y_lab, y_pool = A["y_lab"], A["y_pool"]
n = A["probs0"].shape[1]
X = {s: L("x" + s) for s in ("dev", "test")}
_mem = [A["dev_m0"], A["dev_m1"]] + ([A["dev_m2"]] if "dev_m2" in A else [])
BIAS = (
    A["dev_base"] - sum(w * log_softmax(m, t) for w, m, t in zip(A["weights"], _mem, A["temps"]))
)[0]
print("bias", np.round(BIAS, 3))


def svc(x, y, w=None):
    s = LinearSVC(C=float(A["C"]), max_iter=5000).fit(x, y, sample_weight=w)
    coef = np.zeros((n, x.shape[1]))
    b = np.full(n, -1.0)
    coef[s.classes_] = s.coef_
    b[s.classes_] = s.intercept_
    return coef, b


def score(coef, b, tag):
    out = []
    for s in ("dev", "test"):
        lin = np.asarray(X[s] @ coef.T) + b
        mem = [A[f"{s}_m0"], lin] + ([A[f"{s}_m2"]] if f"{s}_m2" in A else [])
        pooled = sum(w * log_softmax(m, t) for w, m, t in zip(A["weights"], mem, A["temps"])) + BIAS
        g = A[f"y_{s}"]
        out.append(
            f"{s} mix {(pooled.argmax(1) == g).mean():.4f} alone {(lin.argmax(1) == g).mean():.4f}"
        )
    print(tag, " | ".join(out), flush=True)


for s in ("dev", "test"):
    print("base", s, round((A[f"{s}_base"].argmax(1) == A[f"y_{s}"]).mean(), 4))
sm = spread(graph, A["probs0"], 0.8)
pred, conf = sm.argmax(1), sm.max(1)
print("spread acc", (pred == y_pool).mean())
for q in (0.5, 0.8, 0.9):
    thr = np.quantile(conf, 1 - q)
    print(" top", q, "acc", (pred[conf >= thr] == y_pool[conf >= thr]).mean())
xall = sp.vstack([x_lab, x_pool]).tocsr()
yall = np.concatenate([y_lab, pred])
score(*svc(xall, yall), "hard all")
for pw in (1, 2, 4):
    w = np.concatenate([np.ones(len(y_lab)), conf**pw])
    score(*svc(xall, yall, w), f"weighted conf^{pw}")
for share in (0.6, 0.8):
    ch = select_confident(pred, conf, share)
    score(
        *svc(sp.vstack([x_lab, x_pool[ch]]).tocsr(), np.concatenate([y_lab, pred[ch]])),
        f"share {share}",
    )
# oracle: true pool labels (the ceiling)
score(*svc(xall, np.concatenate([y_lab, y_pool])), "oracle pool labels")
print("--- linear weight sweep (others keep their proportions)")


def sweep(coef, b, tag):
    for s in ("dev", "test"):
        lin = np.asarray(X[s] @ coef.T) + b
        mem = [A[f"{s}_m0"], lin] + ([A[f"{s}_m2"]] if f"{s}_m2" in A else [])
        w0 = np.array(A["weights"], float)
        others = w0.copy()
        others[1] = 0
        others /= others.sum()
        row = []
        for wl in (0.2, 0.4, 0.6, 0.8, 0.9, 1.0):
            w = (1 - wl) * others
            w[1] = wl
            pooled = sum(wi * log_softmax(m, t) for wi, m, t in zip(w, mem, A["temps"])) + BIAS
            row.append(f"{wl}:{(pooled.argmax(1) == A[f'y_{s}']).mean():.4f}")
        print(tag, s, " ".join(row), flush=True)


sweep(*svc(xall, yall), "hard")
for pw in (2, 4, 8):
    sweep(*svc(xall, yall, np.concatenate([np.ones(len(y_lab)), conf**pw])), f"conf^{pw}")
print("conf quantiles", np.round(np.quantile(conf, [0.1, 0.25, 0.5, 0.75, 0.9]), 3))
for pw in (3, 4, 6):
    w = conf**pw
    w = w / w.mean()
    score(*svc(xall, yall, np.concatenate([np.ones(len(y_lab)), w])), f"conf^{pw} mean-1")
srt = np.sort(sm, 1)
margin = srt[:, -1] - srt[:, -2]
for pw in (1, 2):
    score(*svc(xall, yall, np.concatenate([np.ones(len(y_lab)), margin**pw])), f"margin^{pw}")
print("--- raw (unsmoothed) pseudo-labels, weighted")
rp, rc = A["probs0"].argmax(1), A["probs0"].max(1)
print("raw acc", (rp == y_pool).mean())
yraw = np.concatenate([y_lab, rp])
for pw in (2, 4):
    score(*svc(xall, yraw, np.concatenate([np.ones(len(y_lab)), rc**pw])), f"raw all conf^{pw}")
for share in (0.6,):
    ch = select_confident(rp, rc, share)
    score(
        *svc(sp.vstack([x_lab, x_pool[ch]]).tocsr(), np.concatenate([y_lab, rp[ch]])),
        f"raw share {share}",
    )
    score(
        *svc(
            sp.vstack([x_lab, x_pool[ch]]).tocsr(),
            np.concatenate([y_lab, rp[ch]]),
            np.concatenate([np.ones(len(y_lab)), rc[ch] ** 4]),
        ),
        f"raw share {share} conf^4",
    )
