"""The Keras side of bench/predict_vs_keras.sh: the same work as `cxr predict` / `cxr explain`.

Builds MobileNetV2 (224 px, random weights: speed does not depend on them) with the paper's
head, then for each of the first N PNGs: decode, gray to RGB, resize to 224 (bilinear),
x / 127.5 - 1, predict in batches of 8 ("predict"), or additionally Grad-CAM from the last
convolutional block with tf.GradientTape, upsampled to the X-ray and written as a PNG overlay
("explain"). Prints one JSON line; the time covers building the model too, as cxr's covers
loading it.
Usage: keras_screen.py predict|explain IMAGE_DIR COUNT OUT_DIR
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from paper_head import paper_head  # noqa: E402

SIDE = 224
BATCH = 8


def build_model():
    trunk = tf.keras.applications.MobileNetV2(
        input_shape=(SIDE, SIDE, 3), include_top=False, weights=None
    )
    out = paper_head(tf.keras.layers, trunk.output)
    model = tf.keras.Model(trunk.input, out)
    cam_model = tf.keras.Model(trunk.input, [trunk.get_layer("out_relu").output, out])
    return model, cam_model


def load(path):
    gray = Image.open(path).convert("L")
    rgb = gray.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR)
    return gray, np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0


def predict(model, paths):
    scores = []
    for start in range(0, len(paths), BATCH):
        batch = np.stack([load(p)[1] for p in paths[start : start + BATCH]])
        scores.extend(model(batch, training=False).numpy()[:, 0].tolist())
    return scores


def explain(cam_model, paths, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for path in paths:
        gray, x = load(path)
        with tf.GradientTape() as tape:
            features, prob = cam_model(x[None], training=False)
            logit = tf.math.log(prob / (1.0 - prob))
        grads = tape.gradient(logit, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0]
        cam = cam / (tf.reduce_max(cam) + 1e-8)
        heat = tf.image.resize(cam[..., None], (gray.height, gray.width)).numpy()[..., 0]
        base = np.asarray(gray, dtype=np.float32) / 255.0
        overlay = np.stack([base * 0.6 + heat * 0.4, base * 0.6, base * 0.6 + (1 - heat) * 0.2], -1)
        Image.fromarray((np.clip(overlay, 0, 1) * 255).astype(np.uint8)).save(
            os.path.join(out_dir, os.path.basename(path))
        )


def main():
    mode, image_dir, count, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    paths = sorted(
        os.path.join(image_dir, f) for f in os.listdir(image_dir) if f.endswith(".png")
    )[:count]
    started = time.perf_counter()
    model, cam_model = build_model()
    if mode == "predict":
        predict(model, paths)
    else:
        explain(cam_model, paths, out_dir)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "framework": f"keras {tf.__version__}",
                "mode": mode,
                "images": len(paths),
                "seconds": round(seconds, 2),
                "images_per_s": round(len(paths) / seconds, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
