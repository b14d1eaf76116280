"""Offline probes of how to pool the members' last-stage feature maps before the head: global
average (what cxr's head does), global max, GeM, and average pools over lung-zone bands and
grids, which keep where in the chest a feature fires. L2-regularised logistic regression on
standardised features, 5-fold stratified cross-validation, three fold seeds, members averaged in
log-odds (bench/head_probe.py's protocol, with scikit-learn in place of PyTorch).

Maps come from the stage_features example with --maps (5 views: plain, then 4 augmented):
    cargo run --release -p cxr-nn --example stage_features -- --maps \\
        recipes/cxr-tb-ensemble.toml ../shared/data/shenzhen/images FEATS 5 \\
        mobilenet-v2 efficientnet-lite0 efficientnet-lite1
    python3 -m venv venv && venv/bin/pip install numpy scikit-learn
    venv/bin/python bench/pooling_probe.py FEATS [WEIGHT_DECAY,...] [POOLING,...]
Training rows are every view of the training images; test rows the plain view. Prints pooled
AUC per member and for the ensemble, and accuracy at 0.5 of the ensemble.
"""
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from probe_folds import auc, cross_validate, read_labels

feats = sys.argv[1]
decays = [float(d) for d in (sys.argv[2] if len(sys.argv) > 2 else "0.01").split(",")]
trunks = ["mobilenet-v2", "efficientnet-lite0", "efficientnet-lite1"]
names, labels = read_labels(feats)
count, views = len(labels), 5


def bands(maps, rows, cols):
    """Average pools over a rows x cols grid of near-equal cells: [n, c * rows * cols]."""
    n, c, h, w = maps.shape
    cells = []
    for r in range(rows):
        for q in range(cols):
            top, bottom = r * h // rows, (r + 1) * h // rows
            left, right = q * w // cols, (q + 1) * w // cols
            cells.append(maps[:, :, top:bottom, left:right].mean((2, 3)))
    return np.concatenate(cells, 1)


def gem(maps, p=3.0):
    return np.power(np.power(np.maximum(maps, 0), p).mean((2, 3)) + 1e-12, 1 / p)


POOLINGS = {
    "average": lambda m: m.mean((2, 3)),
    "max": lambda m: m.max((2, 3)),
    "average+max": lambda m: np.concatenate([m.mean((2, 3)), m.max((2, 3))], 1),
    "gem3": gem,
    "3 bands": lambda m: bands(m, 3, 1),
    "average+3 bands": lambda m: np.concatenate([m.mean((2, 3)), bands(m, 3, 1)], 1),
    "2x2": lambda m: bands(m, 2, 2),
    "3x2": lambda m: bands(m, 3, 2),
    "left/right": lambda m: bands(m, 1, 2),
}
chosen = sys.argv[3].split(",") if len(sys.argv) > 3 else list(POOLINGS)


def load(trunk, pooling):
    c, h, w = (int(v) for v in open(f"{feats}/{trunk}.map_shape").read().split())
    pooled = []
    for v in range(views):
        raw = np.fromfile(f"{feats}/{trunk}_maps_v{v}.f16", dtype=np.float16)
        pooled.append(POOLINGS[pooling](raw.reshape(count, c, h, w).astype(np.float32)))
    return np.stack(pooled)


def logistic(x_train, y_train, x_test, decay):
    mean, spread = x_train.mean(0), x_train.std(0) + 1e-6
    # mean BCE + decay * |w|^2, in scikit-learn's terms (C * summed loss + |w|^2 / 2)
    model = LogisticRegression(C=1 / (2 * decay * len(y_train)), max_iter=300)
    model.fit((x_train - mean) / spread, y_train)
    return model.decision_function((x_test - mean) / spread)


for pooling in chosen:
    data = {trunk: load(trunk, pooling) for trunk in trunks}
    for decay in decays:
        members, ensemble, accuracy = [], [], []
        for seed in (42, 1, 2):
            scores = [cross_validate(data[trunk], labels, seed,
                                     lambda a, b, c: logistic(a, b, c, decay))
                      for trunk in trunks]
            members.append([auc(s, labels) for s in scores])
            mean = np.mean(scores, 0)
            ensemble.append(auc(mean, labels))
            accuracy.append(((mean > 0) == (labels == 1)).mean())
        print(f"{pooling} ({data[trunks[0]].shape[2]} features for {trunks[0]}), decay {decay:g}: "
              f"members {np.round(np.mean(members, 0), 3)}, ensemble {np.mean(ensemble):.3f} "
              f"(seeds 42, 1, 2: {np.round(ensemble, 3)}), accuracy {np.mean(accuracy):.3f}",
              flush=True)
