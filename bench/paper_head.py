"""The paper's classifier head in Keras, for the bench scripts that build it in Keras 2 or 3.

GAP -> Dense 512 -> ReLU -> BatchNorm -> Dropout 0.5 -> Dense 1 -> sigmoid.
"""


def paper_head(layers, features):
    """The head on `features`; `layers` is the Keras flavour's `layers` module."""
    x = layers.GlobalAveragePooling2D()(features)
    x = layers.Dense(512)(x)
    x = layers.ReLU()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(x)
    return layers.Dense(1, activation="sigmoid")(x)
