"""Expected values for cxr-core's metrics, computed with scikit-learn, scipy and statsmodels.

Writes crates/cxr-core/tests/fixtures/metrics/reference.json, which the Rust integration
test crates/cxr-core/tests/metrics_reference.rs compares against. Run through run.sh, which
pins the library versions. Non-finite numbers are written as the strings "inf", "-inf", "nan"
because JSON has no literal for them.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.stats
import sklearn
import statsmodels
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
SENSITIVITY_TARGETS = [0.8, 0.9, 0.95]
SPECIFICITY_TARGETS = [0.8, 0.9, 0.95]
CALIBRATION_BINS = [10, 5]


# --- DeLong, after Sun & Xu (2014), "Fast implementation of DeLong's algorithm for comparing
# the areas under correlated receiver operating characteristic curves", written from the
# paper in the shape of the widely used compare_auc_delong_xu.py.


def compute_midrank(x):
    """Midranks (1-based, ties sharing their mean rank) of a 1-D array."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    n = len(x)
    ranks_sorted = np.zeros(n, dtype=float)
    i = 0
    while i < n:
        j = i
        while j < n and sorted_x[j] == sorted_x[i]:
            j += 1
        ranks_sorted[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    ranks = np.empty(n, dtype=float)
    ranks[order] = ranks_sorted
    return ranks


def fast_delong(predictions_sorted_transposed, label_1_count):
    """AUCs and their DeLong covariance for k models.

    predictions_sorted_transposed: k x (m + n) array, the m positive cases first.
    """
    m = label_1_count
    n = predictions_sorted_transposed.shape[1] - m
    positive_examples = predictions_sorted_transposed[:, :m]
    negative_examples = predictions_sorted_transposed[:, m:]
    k = predictions_sorted_transposed.shape[0]
    tx = np.empty([k, m])
    ty = np.empty([k, n])
    tz = np.empty([k, m + n])
    for r in range(k):
        tx[r, :] = compute_midrank(positive_examples[r, :])
        ty[r, :] = compute_midrank(negative_examples[r, :])
        tz[r, :] = compute_midrank(predictions_sorted_transposed[r, :])
    aucs = tz[:, :m].sum(axis=1) / m / n - float(m + 1.0) / 2.0 / n
    v01 = (tz[:, :m] - tx[:, :]) / n
    v10 = 1.0 - (tz[:, m:] - ty[:, :]) / m
    sx = np.atleast_2d(np.cov(v01))
    sy = np.atleast_2d(np.cov(v10))
    delong_cov = sx / m + sy / n
    return aucs, delong_cov


def positives_first(labels, *score_vectors):
    order = np.concatenate([np.flatnonzero(labels), np.flatnonzero(~labels)])
    return np.vstack([s[order] for s in score_vectors]), int(labels.sum())


def delong_auc(scores, labels):
    predictions, m = positives_first(labels, scores)
    aucs, cov = fast_delong(predictions, m)
    auc = float(aucs[0])
    std_error = math.sqrt(float(cov[0, 0]))
    z = scipy.stats.norm.ppf(1 - (1 - CONFIDENCE) / 2)
    return {
        "auc": auc,
        "std_error": std_error,
        "lower": max(0.0, auc - z * std_error),
        "upper": min(1.0, auc + z * std_error),
    }


def delong_paired(scores_a, scores_b, labels):
    predictions, m = positives_first(labels, scores_a, scores_b)
    aucs, cov = fast_delong(predictions, m)
    difference = float(aucs[0] - aucs[1])
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    std_error = math.sqrt(max(variance, 0.0))
    z = difference / std_error
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": difference,
        "std_error": std_error,
        "z": z,
        "p_value": float(2 * scipy.stats.norm.sf(abs(z))),
    }


# --- scikit-learn / statsmodels ---


def wilson(successes, trials):
    if trials == 0:
        return None
    lower, upper = proportion_confint(successes, trials, alpha=1 - CONFIDENCE, method="wilson")
    return {"value": successes / trials, "lower": float(lower), "upper": float(upper)}


def confusion(scores, labels, threshold):
    predicted = scores >= threshold
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, predicted, labels=[False, True]).ravel())
    f1_denominator = 2 * tp + fp + fn
    return {
        "threshold": threshold,
        "true_positives": tp,
        "false_positives": fp,
        "true_negatives": tn,
        "false_negatives": fn,
        "accuracy": wilson(tp + tn, tp + fp + tn + fn),
        "sensitivity": wilson(tp, tp + fn),
        "specificity": wilson(tn, tn + fp),
        "ppv": wilson(tp, tp + fp),
        "npv": wilson(tn, tn + fn),
        "f1": 2 * tp / f1_denominator if f1_denominator else None,
    }


def operating_points(scores, labels):
    """Threshold rules on roc_curve(drop_intermediate=False), as cxr-core defines them."""
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    tp = np.rint(tpr * positives).astype(int)
    fp = np.rint(fpr * negatives).astype(int)
    sensitivity = tp / positives
    specificity = (negatives - fp) / negatives

    def point(name, k):
        return {
            "name": name,
            "threshold": float(thresholds[k]),
            "sensitivity": float(sensitivity[k]),
            "specificity": float(specificity[k]),
            "true_positives": int(tp[k]),
            "false_positives": int(fp[k]),
        }

    points = []
    for target in SENSITIVITY_TARGETS:
        k = int(np.flatnonzero(sensitivity >= target)[0])  # highest threshold meeting it
        points.append(point(f"sensitivity >= {target}", k))
    for target in SPECIFICITY_TARGETS:
        k = int(np.flatnonzero(specificity >= target)[-1])  # lowest threshold meeting it
        points.append(point(f"specificity >= {target}", k))
    points.append(point("Youden's J", int(np.argmax(tpr - fpr))))
    return points


def calibration(scores, labels, n_bins):
    prob_true, prob_pred = calibration_curve(labels, scores, n_bins=n_bins, strategy="uniform")
    # Bin membership exactly as calibration_curve computes it.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=n_bins)
    nonempty = counts[counts > 0]
    ece = float(np.sum(np.abs(prob_true - prob_pred) * nonempty / len(scores)))
    return {
        "bins": n_bins,
        "counts": counts.tolist(),
        "observed_fraction": prob_true.tolist(),
        "mean_predicted": prob_pred.tolist(),
        "expected_calibration_error": ece,
    }


def expected_values(scores, scores_b, labels):
    fpr, tpr, roc_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    precision, recall, pr_thresholds = precision_recall_curve(labels, scores)
    median = float(np.median(scores))
    return {
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": roc_thresholds.tolist()},
        "auc": float(roc_auc_score(labels, scores)),
        "precision_recall": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "thresholds": pr_thresholds.tolist(),
        },
        "average_precision": float(average_precision_score(labels, scores)),
        "delong": delong_auc(scores, labels),
        "delong_paired": delong_paired(scores, scores_b, labels),
        "confusion": [confusion(scores, labels, t) for t in (0.5, median)],
        "operating_points": operating_points(scores, labels),
        "brier_score": float(brier_score_loss(labels, scores)),
        "calibration": [calibration(scores, labels, n) for n in CALIBRATION_BINS],
    }


# --- the cases ---


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def realistic_case(seed, positives, negatives, decimals):
    """Two correlated models on one seeded set; rounding makes ties, as real outputs have."""
    rng = np.random.default_rng(seed)
    labels = np.array([True] * positives + [False] * negatives)
    rng.shuffle(labels)
    shared = rng.normal(size=labels.size)
    signal = labels.astype(float)
    scores_a = sigmoid(2.0 * signal - 1.0 + 0.8 * shared + 0.6 * rng.normal(size=labels.size))
    scores_b = sigmoid(1.4 * signal - 0.7 + 0.8 * shared + 0.9 * rng.normal(size=labels.size))
    return np.round(scores_a, decimals), np.round(scores_b, decimals), labels


def cases():
    yield "ties_small", (
        [0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.5, 0.2, 0.9, 0.35, 0.7, 0.0],
        [0.3, 0.4, 0.45, 0.6, 0.5, 0.55, 0.2, 0.2, 0.8, 0.35, 0.9, 0.1],
        [0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0],
    )
    yield "perfect_separation", (
        [0.9, 0.8, 0.75, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1, 0.05],
        [0.7, 0.9, 0.3, 0.6, 0.5, 0.4, 0.35, 0.8, 0.1, 0.2],
        [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    )
    yield "constant_scores", (
        [0.5] * 8,
        [0.6, 0.4, 0.7, 0.3, 0.5, 0.5, 0.2, 0.8],
        [1, 0, 1, 0, 1, 0, 0, 1],
    )
    yield "worse_than_chance", (
        [0.2, 0.1, 0.3, 0.9, 0.8, 0.6, 0.4, 0.7, 0.3],
        [0.6, 0.5, 0.3, 0.2, 0.8, 0.1, 0.4, 0.7, 0.3],
        [1, 1, 1, 0, 0, 0, 1, 0, 0],
    )
    a, b, labels = realistic_case(seed=8, positives=6, negatives=54, decimals=2)
    yield "imbalanced_n60", (a, b, labels)
    a, b, labels = realistic_case(seed=2024, positives=80, negatives=120, decimals=3)
    yield "realistic_n200", (a, b, labels)


def encode(value):
    """JSON-safe copy: non-finite floats become strings, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


def normal_distribution():
    xs = [-37.5, -8.0, -3.0, -1.959963984540054, -0.5, 0.0, 0.3, 1.0, 2.5, 6.0]
    ps = [1e-300, 1e-10, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999, 1 - 1e-10]
    return {
        "cdf": [[x, float(scipy.stats.norm.cdf(x))] for x in xs],
        "quantile": [[p, float(scipy.stats.norm.ppf(p))] for p in ps],
        "two_sided_p_value": [[x, float(2 * scipy.stats.norm.sf(abs(x)))] for x in xs],
    }


def main(output):
    fixtures = {
        "generated_by": "tools/reference/metrics/make_fixtures.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "statsmodels": statsmodels.__version__,
        },
        "confidence": CONFIDENCE,
        "normal": normal_distribution(),
        "cases": [],
    }
    for name, (scores, scores_b, labels) in cases():
        scores = np.asarray(scores, dtype=float)
        scores_b = np.asarray(scores_b, dtype=float)
        labels = np.asarray(labels, dtype=bool)
        fixtures["cases"].append(
            {
                "name": name,
                "scores": scores.tolist(),
                "scores_b": scores_b.tolist(),
                "labels": labels.tolist(),
                "expected": expected_values(scores, scores_b, labels),
            }
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(encode(fixtures), indent=1, allow_nan=False) + "\n")
    print(f"wrote {output} ({len(fixtures['cases'])} cases)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
