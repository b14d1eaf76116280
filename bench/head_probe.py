"""Offline probes of what head suits the members' frozen features: L2-regularised logistic
regression (full-batch L-BFGS, standardised features) on the pooled features of each trunk
stage, 5-fold stratified cross-validation, three fold seeds, members averaged in log-odds.

Features come from the stage_features example (5 views: plain, then 4 augmented):
    cargo run --release -p cxr-nn --example stage_features -- \
        recipes/cxr-tb-ensemble.toml ../shared/data/shenzhen/images FEATS 5 \
        mobilenet-v2 efficientnet-lite0 efficientnet-lite1
    tools/reference/.venv/bin/python3 bench/head_probe.py FEATS [WEIGHT_DECAY,...]
(the venv: tools/reference/torch/setup.sh). Training rows are every view of the training
images; test rows the plain view. Prints pooled AUC per member and for the ensemble.
"""
import sys

import numpy as np
import torch

from probe_folds import auc, cross_validate, read_labels

torch.set_num_threads(2)
feats = sys.argv[1]
decays = [float(d) for d in (sys.argv[2] if len(sys.argv) > 2 else "0.01").split(",")]
trunks = ["mobilenet-v2", "efficientnet-lite0", "efficientnet-lite1"]
names, labels = read_labels(feats)
count = len(labels)


def load(trunk, views=5):
    channels = [int(c) for c in open(f"{feats}/{trunk}.channels").read().split()]
    stacked = [np.fromfile(f"{feats}/{trunk}_v{v}.f32", dtype=np.float32).reshape(count, -1)
               for v in range(views)]
    return np.stack(stacked), np.cumsum([0] + channels)


def logistic(x_train, y_train, x_test, decay):
    mean, spread = x_train.mean(0), x_train.std(0) + 1e-6
    x_train = torch.tensor((x_train - mean) / spread)
    x_test = torch.tensor((x_test - mean) / spread)
    y_train = torch.tensor(y_train)
    w = torch.zeros(x_train.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x_train @ w + b, y_train)
        loss = loss + decay * (w * w).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return (x_test @ w + b).detach().numpy()


data = {trunk: load(trunk) for trunk in trunks}
stage_sets = {"last stage (what cxr's head reads)": [-1], "every stage": None}
for decay in decays:
    for label, stages in stage_sets.items():
        members, ensemble = [], []
        for seed in (42, 1, 2):
            scores = []
            for trunk in trunks:
                values, offsets = data[trunk]
                chosen = range(len(offsets) - 1) if stages is None else [len(offsets) - 2]
                x = np.concatenate([values[:, :, offsets[s]:offsets[s + 1]] for s in chosen], 2)
                scores.append(cross_validate(
                    x, labels, seed, lambda a, b, c: logistic(a, b, c, decay)))
            members.append([auc(s, labels) for s in scores])
            ensemble.append(auc(np.mean(scores, 0), labels))
        print(f"weight decay {decay:g}, {label}: members {np.round(np.mean(members, 0), 3)}, "
              f"ensemble {np.mean(ensemble):.3f} (seeds 42, 1, 2: {np.round(ensemble, 3)})",
              flush=True)
