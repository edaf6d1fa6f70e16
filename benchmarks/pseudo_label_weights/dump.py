"""Step 1 of the pseudo-label weighting study (docs/benchmarks.md, "Pseudo-labels weighted
by their confidence"): fit `fewshot` with a pool and save what step 2 needs.

Usage: TAXONOMIST_BENCH_DATA=../shared/data .venv/bin/python
       benchmarks/pseudo_label_weights/dump.py DATASET ENCODER SHOTS [OUT_DIR]
The labelled rows are `few_labels.py`'s (seed 13); the rest of the training split is
shuffled (seed 1) and a fifth of it held out with its labels (development rows, inductive:
the pool's own hidden labels are seen by the self-trained SVM as pseudo-labels); the rest,
labels removed, is the pool. One encoder (`other_encoders` off). Saves the pool's and the
held-out / test rows' TF-IDF rows, the pool graph, the labels-only members' pooled pool
distribution and every member's scores to OUT_DIR (default /tmp/zx) as dump-D-E-K*.
This is the script as run in the eighth session, before pseudo-labels were weighted; the
fit sets `pseudo_label_power` 0 so that it stays that run.
"""

import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import numpy as np
import scipy.sparse as sp
from few_labels import sample_rows, splits

import taxonomist.models.selftrain as st
from taxonomist.models import model_class
from taxonomist.taxonomy import Taxonomy

dataset, enc, shots = sys.argv[1], sys.argv[2], int(sys.argv[3])
out_dir = sys.argv[4] if len(sys.argv) > 4 else "/tmp/zx"
out = f"{out_dir}/dump-{dataset}-{enc}-{shots}"
train, test = splits(dataset, 2000, 3000)
paths = sorted(set(train.category) | set(test.category))
tax = Taxonomy.from_paths([p.split(" > ") for p in paths])
lab_rows = sample_rows(train, shots, 13)
lab = train.iloc[lab_rows].reset_index(drop=True)
rest = train.iloc[np.setdiff1d(np.arange(len(train)), lab_rows)].sample(frac=1, random_state=1)
ndev = len(rest) // 5
dev, pool = rest.iloc[:ndev], rest.iloc[ndev:]
cap = {}
orig = st.pseudo_labels


def wrap(*a, **k):
    r = orig(*a, **k)
    cap["args"] = (a, k)
    return r


st.pseudo_labels = wrap
cls = model_class("fewshot")
cfg = {"encoder": enc, "other_encoders": [], "pseudo_label_power": 0}  # as before weighting
if dataset == "zh-retail":
    cfg["cjk_char_ngrams"] = [1, 3]
m = cls(tax, cls.config_class.from_dict(cfg))
m.fit(lab.title.tolist(), lab.category.tolist(), unlabelled=pool.title.tolist())
labels = m.labels
index = {label: i for i, label in enumerate(labels)}
features, x_lab, x_pool, pool_emb = m._pool_features
gp = dict(zip(pool.title, pool.category))
(a, k) = cap["args"]
probs0 = np.exp(st.pooled_logp(a[0], a[1], a[2]))
sp.save_npz(out + "-xlab.npz", x_lab.tocsr())
sp.save_npz(out + "-xpool.npz", x_pool.tocsr())
sp.save_npz(out + "-graph.npz", m._pool_graph.tocsr())
arrays = dict(
    probs0=probs0,
    y_lab=np.array([index[c] for c in lab.category]),
    y_pool=np.array([index[gp[t]] for t in m._unlabelled]),
    weights=m.weights,
    temps=m.member_temperatures,
    C=m.config.C,
)
for n, f in (("dev", dev), ("test", test)):
    t = f.title.tolist()
    sp.save_npz(out + f"-x{n}.npz", features.transform(t).tocsr())
    sc = m._member_scores(t, m.embed(t))
    for i, s in enumerate(sc):
        arrays[f"{n}_m{i}"] = s
    arrays[f"y_{n}"] = np.array([index[c] for c in f.category])
    arrays[f"{n}_base"] = m._logits(t)
np.savez(out + ".npz", **arrays)
print("saved", m.self_training["share"], m.self_training["smoothing"], m.weights)
