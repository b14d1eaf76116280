"""Where a WHO threshold chosen on few images lands: the pooled held-out sensitivity and
specificity of finished `cxr train --folds K` runs with each fold's threshold (the highest
with sensitivity >= 0.90) chosen two ways, from the fold scores of `cross-validation.json`:

- "validation only": on the fold's own validation images (cxr until session 24);
- "with other folds": on those and every other fold's held-out images (cxr since session 25,
  as `crossval::who_thresholds` does; never on the fold's own held-out images);
- "assured": on the same images, the highest threshold whose sensitivity's one-sided 95 %
  Wilson lower bound is 0.90, a margin for the sampling error of the positives (not in cxr;
  what a programme that must be sure of 0.90 would pay in specificity).

    python3 bench/who_thresholds.py RUN_DIR [RUN_DIR ...]

Prints one row per run, then the mean, spread and lowest sensitivity over the runs for each
way. Needs numpy only.
"""
import json
import sys

import numpy as np

WHO_MIN_SENSITIVITY = 0.90
# One-sided 95 %.
Z = 1.6449


def threshold(scores, labels):
    """The highest threshold at which scores >= it keep WHO_MIN_SENSITIVITY of the positives."""
    positives = np.sort(scores[labels])[::-1]
    needed = int(np.ceil(WHO_MIN_SENSITIVITY * len(positives)))
    return positives[needed - 1]


def wilson_lower_bound(k, n):
    p = k / n
    centre = p + Z * Z / (2 * n)
    margin = Z * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - margin) / (1 + Z * Z / n)


def assured_threshold(scores, labels):
    """The highest threshold at which the positives kept give a lower bound >= 0.90."""
    positives = np.sort(scores[labels])[::-1]
    n = len(positives)
    kept = next(
        (k for k in range(1, n + 1) if wilson_lower_bound(k, n) >= WHO_MIN_SENSITIVITY), n
    )
    return positives[kept - 1]


def pooled_rates(folds, thresholds):
    tp = fn = tn = fp = 0
    for fold, t in zip(folds, thresholds):
        scores, labels = fold["test"]
        called = scores >= t
        tp += (called & labels).sum()
        fn += (~called & labels).sum()
        tn += (~called & ~labels).sum()
        fp += (called & ~labels).sum()
    return tp / (tp + fn), tn / (tn + fp)


def read_folds(run):
    with open(f"{run}/cross-validation.json") as f:
        scores = json.load(f)["scores"]
    pair = lambda fold, part: (
        np.array(fold[f"{part}_scores"], dtype=float),
        np.array(fold[f"{part}_labels"], dtype=bool),
    )
    return [{"val": pair(fold, "val"), "test": pair(fold, "test")} for fold in scores]


def with_other_folds(folds, k):
    parts = [folds[k]["val"]] + [f["test"] for j, f in enumerate(folds) if j != k]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def main(runs):
    results = {"validation only": [], "with other folds": [], "assured": []}
    for run in runs:
        folds = read_folds(run)
        calibration = [with_other_folds(folds, k) for k in range(len(folds))]
        own = [threshold(*fold["val"]) for fold in folds]
        wider = [threshold(*scores) for scores in calibration]
        assured = [assured_threshold(*scores) for scores in calibration]
        a, b, c = (pooled_rates(folds, t) for t in (own, wider, assured))
        results["validation only"].append(a)
        results["with other folds"].append(b)
        results["assured"].append(c)
        print(
            f"{run}: validation only {a[0]:.3f} / {a[1]:.3f}, with other folds "
            f"{b[0]:.3f} / {b[1]:.3f}, assured {c[0]:.3f} / {c[1]:.3f}"
        )
    for name, rates in results.items():
        rates = np.array(rates)
        sens, spec = rates[:, 0], rates[:, 1]
        spread = sens.std(ddof=1) if len(sens) > 1 else 0.0
        print(
            f"{name}: sensitivity mean {sens.mean():.3f} (sd {spread:.3f}, lowest {sens.min():.3f}, "
            f"highest {sens.max():.3f}), specificity mean {spec.mean():.3f} "
            f"(lowest {spec.min():.3f}, highest {spec.max():.3f}), "
            f"mean distance from {WHO_MIN_SENSITIVITY} {np.abs(sens - WHO_MIN_SENSITIVITY).mean():.3f}"
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
