"""A PyTorch replica of cxr's head training on cached member features, on the folds of real
cxr runs: what the paper's head (kept by validation loss) and a standardised linear head with
an L2 penalty (kept at its last epoch) give on exactly those folds.

    tools/reference/.venv/bin/python3 bench/head_replica.py [--augmented-only] FEATS RUN_DIR...

FEATS: the stage_features example's output (see bench/head_probe.py), 5 views. RUN_DIR: an
ensemble run of `cxr train --folds 5` (its cross-validation.json gives each fold's test and
validation images). As in cxr, each fold trains on the three folds left, one view per epoch in
turn (here augmented views 1-4 and the plain view; with --augmented-only, as cxr, views 1-4
alone), 60 epochs of RMSprop at 1e-3, batch 32, and scores the plain view. Prints pooled AUC per member and for the ensemble (log-odds mean).
"""
import copy
import json
import sys

import numpy as np
import torch

torch.set_num_threads(2)
arguments = sys.argv[1:]
augmented_only = arguments[0] == "--augmented-only"
feats, runs = arguments[augmented_only], arguments[augmented_only + 1:]
trunks = ["mobilenet-v2", "efficientnet-lite0", "efficientnet-lite1"]
names = open(f"{feats}/names.txt").read().split("\n")
labels = np.array([n.endswith("_1.png") for n in names], dtype=np.float32)
count = len(labels)
VIEWS = [1, 2, 3, 4] if augmented_only else [1, 2, 3, 4, 0]


def last_stage(trunk):
    channels = [int(c) for c in open(f"{feats}/{trunk}.channels").read().split()]
    start = sum(channels[:-1])
    views = [np.fromfile(f"{feats}/{trunk}_v{v}.f32", dtype=np.float32).reshape(count, -1)
             for v in VIEWS]
    # The plain view last: validation and test rows read it whatever the training views.
    views.append(np.fromfile(f"{feats}/{trunk}_v0.f32", dtype=np.float32).reshape(count, -1))
    return np.stack(views)[:, :, start:]


def auc(scores, truth):
    pos, neg = scores[truth == 1], scores[truth == 0]
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return (ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def train_head(x_views, y, x_val, y_val, x_test, linear):
    """x_views [views, n, c]. Linear: standardised, L2 0.01, last epoch. Else the paper's
    head (Dense 512 -> ReLU -> BatchNorm -> Dropout 0.5), rate cut by validation loss
    (factor 0.1, patience 5, floor 1e-6), best validation loss kept."""
    torch.manual_seed(42)
    if linear:
        flat = x_views.reshape(-1, x_views.shape[2])
        mean, spread = flat.mean(0), flat.std(0) + 1e-6
    else:
        mean, spread = 0.0, 1.0
    tensor = lambda a: torch.tensor((a - mean) / spread, dtype=torch.float32)
    x_views, x_val, x_test = tensor(x_views), tensor(x_val), tensor(x_test)
    y, y_val = torch.tensor(y), torch.tensor(y_val)
    width = x_views.shape[2]
    if linear:
        net = torch.nn.Linear(width, 1)
    else:
        net = torch.nn.Sequential(
            torch.nn.Linear(width, 512), torch.nn.ReLU(),
            torch.nn.BatchNorm1d(512, eps=1e-3, momentum=0.01), torch.nn.Dropout(0.5),
            torch.nn.Linear(512, 1))
    optimiser = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=0.1, patience=5, threshold=1e-4, threshold_mode="abs", min_lr=1e-6)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    best = (float("inf"), None)
    for epoch in range(60):
        x = x_views[epoch % len(x_views)]
        order = torch.randperm(x.shape[0])
        net.train()
        for i in range(0, len(order), 32):
            batch = order[i:i + 32]
            if len(batch) < 2:
                continue
            loss = bce(net(x[batch]).squeeze(1), y[batch])
            if linear:
                loss = loss + 0.01 * (net.weight ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if linear:
            continue
        net.eval()
        with torch.no_grad():
            val_loss = bce(net(x_val).squeeze(1), y_val).item()
        schedule.step(val_loss)
        if val_loss < best[0] - 1e-4:
            best = (val_loss, copy.deepcopy(net.state_dict()))
    if not linear:
        net.load_state_dict(best[1])
    net.eval()
    with torch.no_grad():
        return net(x_test).squeeze(1).numpy()


features = {trunk: last_stage(trunk) for trunk in trunks}
for run in runs:
    folds = json.load(open(f"{run}/cross-validation.json"))["scores"]
    for linear in (False, True):
        members = []
        for trunk in trunks:
            x, out = features[trunk], np.zeros(count)
            for fold in folds:
                test, val = np.zeros(count, bool), np.zeros(count, bool)
                test[fold["test"]], val[fold["val"]] = True, True
                train = ~test & ~val
                out[test] = train_head(x[:len(VIEWS), train], labels[train], x[-1, val], labels[val],
                                       x[-1, test], linear)
            members.append(out)
        head = "linear, L2 0.01, last epoch" if linear else "paper's head, kept by val loss"
        print(f"{run}: {head}: members {[round(float(auc(m, labels)), 3) for m in members]}, "
              f"ensemble {auc(np.mean(members, 0), labels):.3f}", flush=True)
