"""Keras/TensorFlow side of bench/backbones.sh: inference images/s of the Keras originals at
their native size, as the Rust example measures ours (same batch, median over rounds, random
weights: speed does not depend on them). Each model is called through a compiled tf.function
(what `model.predict` runs), inference mode. Prints one JSON line per backbone.

Usage: python backbones_keras.py BATCH ROUNDS [BACKBONE...]
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

apps = tf.keras.applications
MODELS = {
    "mobilenet-v2": (apps.MobileNetV2, 224),
    "inception-v3": (apps.InceptionV3, 299),
    "xception": (apps.Xception, 299),
    "inception-resnet-v2": (apps.InceptionResNetV2, 299),
}


def main():
    batch, rounds = int(sys.argv[1]), int(sys.argv[2])
    # Backbones named after the two numbers, of those this framework has; all without names.
    wanted = sys.argv[3:] or list(MODELS)
    for name in [name for name in wanted if name in MODELS]:
        build, side = MODELS[name]
        model = build(weights=None, input_shape=(side, side, 3))
        run = tf.function(lambda x, model=model: model(x, training=False))
        x = tf.constant(np.random.default_rng(0).normal(size=(batch, side, side, 3)), tf.float32)
        run(x).numpy()  # warm-up: tracing and first-touch allocations
        rates = []
        for _ in range(rounds):
            start = time.perf_counter()
            run(x).numpy()
            rates.append(batch / (time.perf_counter() - start))
        line = {
            "framework": f"keras-{tf.keras.__version__}/tf-{tf.__version__}",
            "backbone": name,
            "input": side,
            "batch": batch,
            "images_per_s": statistics.median(rates),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
