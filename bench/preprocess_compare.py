"""Runs cxr's preprocess_throughput and the Pillow peer on the same images, alternating
rounds so both see the same machine load, and prints images/s (best round) and ratios.

Usage: preprocess_compare.py RUST_BINARY ROUNDS SET_NAME:LIST_FILE...
Each LIST_FILE holds one image path per line. Results also go to bench/results/preprocess.json.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def run_json(command, env=None):
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(rust, rounds, images):
    python = sys.executable
    pillow = [python, str(HERE / "preprocess_pillow.py")]
    variants = {
        "cxr, 2 threads": ([rust, *images], {"RAYON_NUM_THREADS": "2"}),
        "cxr, 1 thread": ([rust, *images], {"RAYON_NUM_THREADS": "1"}),
        "Pillow, 1 process": ([*pillow, *images], {}),
        "Pillow, 2 processes": ([*pillow, "--processes", "2", *images], {}),
    }
    best = {name: 0.0 for name in variants}
    for _ in range(rounds):
        for name, (command, extra_env) in variants.items():
            result = run_json(command, {**os.environ, **extra_env})
            best[name] = max(best[name], result["images_per_s"])
    return best


def max_difference(rust, image):
    """Largest absolute difference between the two tensors for one image."""
    with tempfile.TemporaryDirectory() as scratch:
        ours, theirs = f"{scratch}/cxr.f32", f"{scratch}/pillow.f32"
        run_json([rust, "--dump", ours, image])
        run_json([sys.executable, str(HERE / "preprocess_pillow.py"), "--dump", theirs, image])
        a, b = np.fromfile(ours, "<f4"), np.fromfile(theirs, "<f4")
        return float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")


def main():
    rust, rounds, sets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    # On a shared machine the figures depend on what else runs: say how busy it was.
    load_before = os.getloadavg()[0]
    results = []
    for entry in sets:
        name, list_file = entry.split(":", 1)
        images = pathlib.Path(list_file).read_text().split()
        best = measure(rust, rounds, images)
        results.append({
            "set": name,
            "images": len(images),
            "images_per_s": best,
            "ratio_to_pillow_1_process": best["cxr, 2 threads"] / best["Pillow, 1 process"],
            "ratio_to_pillow_2_processes": best["cxr, 2 threads"] / best["Pillow, 2 processes"],
            "max_abs_difference": max_difference(rust, images[0]),
        })

    load_after = os.getloadavg()[0]
    for r in results:
        r["load_average_before_after"] = [load_before, load_after]
    columns = list(results[0]["images_per_s"])
    print(f"images/s, best of {rounds} alternating rounds; cpus: {os.cpu_count()}; "
          f"1-minute load average {load_before:.1f} before, {load_after:.1f} after")
    print("| set | images | " + " | ".join(columns) + " | cxr 2t / Pillow 1p | cxr 2t / Pillow 2p | max abs diff |")
    print("|---" * (len(columns) + 5) + "|")
    for r in results:
        speeds = " | ".join(f"{r['images_per_s'][c]:.1f}" for c in columns)
        print(f"| {r['set']} | {r['images']} | {speeds} | {r['ratio_to_pillow_1_process']:.2f}x "
              f"| {r['ratio_to_pillow_2_processes']:.2f}x | {r['max_abs_difference']:.2e} |")
    out = HERE / "results" / "preprocess.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
