"""Which subset of an ensemble's networks holds up best when another site's X-rays differ:
scores every subset of the networks in `site_shift --scores` files, under every shift, from
the stored held-out scores (no network is run again).

    cargo run --release -p cxr-nn --example site_shift -- --scores SEED42.csv \
        runs/whole-42,runs/crop-42 none noise-0.03 blur-3px wider-field tighter-field portrait-squashed
    python3 bench/member_subsets.py SEED42.csv [SEED1.csv ...]

A network is named by its member and whether its run crops to the lungs (a run folder whose
name contains "crop"): e.g. `mobilenet-v2 C`, `efficientnet-lite0 W`. Members of a subset are
averaged in log-odds, as `cxr` does; the pooled AUC (ties counted half) is averaged over the
CSV files given (one per seed). Prints one row per subset, best mean over the shifts first.
Needs numpy only.
"""
import csv
import itertools
import sys
from collections import defaultdict

import numpy as np


def auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return greater + 0.5 * ties


def log_odds(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def read(path):
    """{(shift, network): {image: score}} and {image: label} of one site_shift CSV."""
    scores, labels = defaultdict(dict), {}
    for row in csv.DictReader(open(path)):
        view = "C" if "crop" in row["run"] else "W"
        network = f"{row['member']} {view}"
        scores[(row["shift"], network)][int(row["image"])] = float(row["score"])
        labels[int(row["image"])] = int(row["label"])
    return scores, labels


def main(paths):
    seeds = [read(path) for path in paths]
    shifts = list(dict.fromkeys(shift for shift, _ in seeds[0][0]))
    networks = sorted(dict.fromkeys(network for _, network in seeds[0][0]))
    rows = []
    for size in range(1, len(networks) + 1):
        for subset in itertools.combinations(networks, size):
            row = []
            for shift in shifts:
                aucs = []
                for scores, labels in seeds:
                    images = sorted(labels)
                    y = np.array([labels[i] for i in images])
                    members = [
                        log_odds(np.array([scores[(shift, n)][i] for i in images]))
                        for n in subset
                    ]
                    aucs.append(auc(np.mean(members, axis=0), y))
                row.append(np.mean(aucs))
            rows.append((subset, row))
    shifted = [i for i, shift in enumerate(shifts) if shift != "none"]
    mean = lambda row: np.mean([row[i] for i in shifted]) if shifted else row[0]
    print(" | ".join(["networks", *shifts, "mean of the shifts"]))
    for subset, row in sorted(rows, key=lambda r: -mean(r[1])):
        print(" | ".join([" + ".join(subset), *(f"{a:.3f}" for a in row), f"{mean(row):.4f}"]))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
