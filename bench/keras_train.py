"""The Keras side of bench/train_vs_keras.sh: the paper's two-phase recipe in Keras/TF.

Runs in tf-keras (Keras 2, as the paper's 2.2.4; Keras 3 dropped ImageDataGenerator). ImageNet
Xception without top (the only Keras ImageNet weights obtainable offline here: the base of the
pneumonia package's Keras 3 model, copied layer by layer by name), frozen; the paper's head
(paper_head.py); binary cross-entropy; RMSprop(1e-4); batch 32;
ImageDataGenerator(rotation 10, shift 0.1, zoom 0.1) from the paper's train/val folders;
ModelCheckpoint and ReduceLROnPlateau(factor 0.1, patience 3) on validation accuracy. Phase 2
reloads the best weights, makes block13 and block14 trainable and trains more epochs with the
same settings. Prints one JSON line: per-epoch seconds, validation accuracy and AUC of both phases,
the best validation accuracy and the peak RSS.
Usage: keras_train.py PNEUMONIA_MODEL.keras DATA_ROOT FROZEN_EPOCHS FINE_TUNE_EPOCHS WORK_DIR
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras as keras3  # noqa: E402  (only to read the Keras 3 file)
import tf_keras as keras  # noqa: E402
from tf_keras.preprocessing.image import ImageDataGenerator  # noqa: E402

from paper_head import paper_head  # noqa: E402

SIDE = 299
BATCH = 32
UNFROZEN_PREFIXES = ("block13", "block14")


def build(model_path):
    xception = keras3.saving.load_model(model_path).get_layer("xception")
    trunk = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(SIDE, SIDE, 3)
    )
    # get_layer raises on a name the file lacks, so no layer is silently left random.
    for layer in trunk.layers:
        if layer.weights:
            layer.set_weights(xception.get_layer(layer.name).get_weights())
    trunk.trainable = False
    return trunk, keras.Model(trunk.input, paper_head(keras.layers, trunk.output))


def compile_model(model):
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-4, rho=0.9, epsilon=1e-7),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc", num_thresholds=1000)],
    )


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def run_phase(model, train, val, epochs, checkpoint):
    timer = EpochTimer()
    history = model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        verbose=2,
        callbacks=[
            timer,
            keras.callbacks.ModelCheckpoint(
                checkpoint, monitor="val_accuracy", save_best_only=True,
                save_weights_only=True,
            ),
            keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=3),
        ],
    )
    return {
        "epoch_seconds": [round(s, 2) for s in timer.seconds],
        "val_accuracy": [round(a, 4) for a in history.history["val_accuracy"]],
        "val_auc": [round(a, 4) for a in history.history["val_auc"]],
    }


def main():
    model_path, root, frozen_epochs, fine_epochs, work = sys.argv[1:6]
    os.makedirs(work, exist_ok=True)
    start = time.perf_counter()
    trunk, model = build(model_path)
    prep = keras.applications.xception.preprocess_input
    augmenting = ImageDataGenerator(
        preprocessing_function=prep, rotation_range=10, width_shift_range=0.1,
        height_shift_range=0.1, zoom_range=0.1,
    )
    plain = ImageDataGenerator(preprocessing_function=prep)
    flow = dict(target_size=(SIDE, SIDE), batch_size=BATCH, class_mode="binary", seed=42)
    train = augmenting.flow_from_directory(os.path.join(root, "train"), shuffle=True, **flow)
    val = plain.flow_from_directory(os.path.join(root, "val"), shuffle=False, **flow)

    checkpoint = os.path.join(work, "best.weights.h5")
    compile_model(model)
    frozen = run_phase(model, train, val, int(frozen_epochs), checkpoint)

    model.load_weights(checkpoint)
    trunk.trainable = True
    for layer in trunk.layers:
        layer.trainable = layer.name.startswith(UNFROZEN_PREFIXES)
    compile_model(model)
    fine = run_phase(model, train, val, int(fine_epochs), checkpoint)

    print(json.dumps({
        "framework": f"keras-{keras.__version__}",
        "frozen": frozen,
        "fine_tune": fine,
        "best_val_accuracy": max(frozen["val_accuracy"] + fine["val_accuracy"]),
        "total_seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
