"""What the offline head probes (head_probe.py, pooling_probe.py) share: the Shenzhen labels of
a stage_features folder, the AUC, stratified seeded folds, and cross-validation of one feature
set with a given fit, training on every view of the training images and testing on the plain
view (view 0).
"""
import numpy as np


def read_labels(feats):
    """The image names of a stage_features folder and their labels (1 = TB, from the NLM name)."""
    names = open(f"{feats}/names.txt").read().split("\n")
    return names, np.array([n.endswith("_1.png") for n in names], dtype=np.float32)


def auc(scores, truth):
    pos, neg = scores[truth == 1], scores[truth == 0]
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return (ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def folds(labels, seed, k=5):
    """Each image's fold, stratified by class."""
    rng, fold = np.random.default_rng(seed), np.zeros(len(labels), int)
    for c in (0, 1):
        idx = np.where(labels == c)[0]
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def cross_validate(features, labels, seed, fit):
    """Out-of-fold scores of `fit(x_train, y_train, x_test)` on `features` [views, images, d]."""
    fold, out = folds(labels, seed), np.zeros(len(labels))
    for k in range(5):
        train, test = fold != k, fold == k
        x = features[:, train].reshape(-1, features.shape[2])
        out[test] = fit(x, np.tile(labels[train], features.shape[0]), features[0, test])
    return out
