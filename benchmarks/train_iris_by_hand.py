"""specs/iris.yaml's training written by hand in Keras: the baseline of bench_train.py.

The same work as ``modelspec train specs/iris.yaml -o MODEL.keras``: read the
CSV, encode the labels, split (as sklearn's train_test_split with
random_state=0), standardize with a Normalization layer adapted on the
training rows, build, compile, fit with the same callbacks and epochs,
evaluate on the test rows, save.

Usage: python benchmarks/train_iris_by_hand.py MODEL.keras
"""

from __future__ import annotations

import math
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pandas as pd

DATA = pathlib.Path(__file__).resolve().parent.parent / "specs" / "data" / "iris.csv"


def main(output: str) -> None:
    frame = pd.read_csv(DATA)
    names = sorted(frame["species"].unique())
    x = frame.drop(columns="species").to_numpy("float32")
    y = frame["species"].map({name: i for i, name in enumerate(names)}).to_numpy("int32")

    order = np.random.RandomState(0).permutation(len(frame))
    n_test = math.ceil(len(frame) * 0.2)
    test, rest = order[:n_test], order[n_test:]
    trained_on = rest[: math.floor(len(rest) * 0.9)]  # fit(validation_split=0.1) holds out the last 10 %

    keras.utils.set_random_seed(42)
    norm = keras.layers.Normalization(name="normalize")
    norm.adapt(x[trained_on])
    model = keras.Sequential(
        [
            keras.Input(shape=(4,), name="features"),
            norm,
            keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4)),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation="softmax", name="species"),
        ],
        name="iris_mlp",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=15, restore_best_weights=True)
    model.fit(x[rest], y[rest], validation_split=0.1, epochs=60, batch_size=16, callbacks=[stop], verbose=2)
    metrics = model.evaluate(x[test], y[test], batch_size=16, return_dict=True, verbose=0)
    print({k: round(float(v), 4) for k, v in metrics.items()})
    model.save(output)


if __name__ == "__main__":
    main(sys.argv[1])
