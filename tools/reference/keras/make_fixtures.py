"""Writes the Keras/TensorFlow reference fixtures that cxr-nn's import and parity tests compare against.

Two kinds of fixture, each one safetensors file:
* tiny random models saved as Keras 3 `.keras`, Keras 2 full-model `.h5` and Keras 2 weights-only
  `.h5` (through tf_keras), with the same weights keyed `layer/weight` (Keras 2 names, Keras
  layout) as the importer must read them from all three;
* the pneumonia package's Xception model run on its 16 paediatric X-rays: the resized 8-bit
  pixels (the test applies x/127.5-1 itself), the pooled Xception features, the 2-class
  logits and their softmax probabilities.
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

PNEUMONIA_SIZE = 150  # the package's config.yml img_size


def tiny_functional(keras):
    """A small functional model touching every layer kind the importer converts."""
    layers = keras.layers
    inputs = keras.Input(shape=(12, 12, 3))
    x = layers.Conv2D(4, 3, strides=2, use_bias=True, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
    x = layers.Activation("relu")(x)
    x = layers.SeparableConv2D(6, 3, padding="same", use_bias=False, name="sep")(x)
    x = layers.BatchNormalization(scale=False, name="sep_bn")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="tiny")


def randomise(model, seed):
    """Random values everywhere, including BN statistics, so no tensor is its initialiser."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(size=weight.shape).astype("float32")
        if "moving_variance" in weight.name or "moving_variance" in getattr(weight, "path", ""):
            value = np.abs(value) + 0.5
        weight.assign(value)


def weight_key(layer, weight):
    """`layer/weight` in Keras 2 naming, the importer's (Keras 3 calls a depthwise kernel `kernel`)."""
    kind = weight.name.split("/")[-1].split(":")[0]
    if type(layer).__name__ == "DepthwiseConv2D" and kind == "kernel":
        kind = "depthwise_kernel"
    return f"{layer.name}/{kind}"


def keyed_weights(model):
    """`layer/weight` -> array in Keras layout."""
    return {
        weight_key(layer, weight): np.asarray(weight.numpy(), dtype="float32")
        for layer in model.layers
        for weight in layer.weights
    }


def write_tiny(out_dir):
    import keras
    import tf_keras

    model = tiny_functional(keras)
    randomise(model, seed=3)
    model.save(out_dir / "tiny.keras")
    weights = keyed_weights(model)

    # The same network built with Keras 2 (tf_keras), given the same values, saved both ways.
    model2 = tiny_functional(tf_keras)
    for layer in model2.layers:
        for weight in layer.weights:
            weight.assign(weights[weight_key(layer, weight)])
    model2.save(out_dir / "tiny_keras2.h5", save_format="h5")
    model2.save_weights(out_dir / "tiny_keras2_weights.h5", save_format="h5")

    expected = {name: np.ascontiguousarray(a) for name, a in weights.items()}
    save_file(expected, str(out_dir / "tiny_expected.safetensors"))
    print(f"tiny model: {len(expected)} tensors")


def load_pneumonia_pixels(image_dir):
    """The package's own loading: RGB, nearest-neighbour resize to 150 px (Keras load_img)."""
    from keras.utils import img_to_array, load_img

    names = sorted(p.name for p in Path(image_dir).iterdir() if p.suffix == ".jpeg")
    pixels = []
    for name in names:
        img = load_img(Path(image_dir) / name, target_size=(PNEUMONIA_SIZE, PNEUMONIA_SIZE),
                       interpolation="nearest")
        rgb = img_to_array(img, dtype="uint8")
        # X-rays: the three channels are equal, so one plane is stored and the test repeats it.
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all(), name
        pixels.append(rgb[..., 0])
    return names, np.stack(pixels)


def write_pneumonia(model_path, image_dir, out_dir):
    import keras

    model = keras.saving.load_model(model_path)
    names, gray = load_pneumonia_pixels(image_dir)
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype("float32")
    x = keras.applications.xception.preprocess_input(rgb)
    pooled_model = keras.Model(model.inputs, model.get_layer("global_average_pooling2d").output)
    pooled = pooled_model.predict(x, verbose=0)
    logits = model.predict(x, verbose=0)  # the head's last Dense is linear (trained from logits)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    save_file(
        {
            "pixels": np.ascontiguousarray(gray),
            "pooled": pooled.astype("float32"),
            "logits": logits.astype("float32"),
            "probabilities": probabilities.astype("float32"),
        },
        str(out_dir / "pneumonia_xception.safetensors"),
        metadata={"images": ",".join(names), "keras": keras.__version__},
    )
    print(f"pneumonia: {len(names)} images, probabilities[0] = {probabilities[0]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pneumonia-model", type=Path, required=True)
    parser.add_argument("--pneumonia-images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_tiny(args.out)
    write_pneumonia(args.pneumonia_model, args.pneumonia_images, args.out)


if __name__ == "__main__":
    main()
