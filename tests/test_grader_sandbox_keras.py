"""Keras in the sandbox (issue 11): a normal Keras submission runs, a memory bomb is stopped.

One worker with the settings A4-A6 get (grader.config.KERAS_SANDBOX): it imports
Keras with the TensorFlow backend, trains and evaluates a small CNN on
MNIST-sized data, saves and loads its weights, then runs out of memory on
purpose. About half a minute, most of it TensorFlow's import.
"""

from __future__ import annotations

import time

import pytest
from test_grader_sandbox import BWRAP_OK, BWRAP_REASON, get

from grader import sandbox, wire
from grader.config import KERAS_SANDBOX

pytestmark = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap unusable: {BWRAP_REASON}")

CELLS = {
    "imports": "import numpy as np\nimport keras\nbackend = keras.backend.backend()",
    "model": """
rng = np.random.default_rng(0)
x = rng.random((2000, 28, 28, 1), dtype=np.float32)
y = rng.integers(0, 10, 2000)
model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(32, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
model.save_weights("/tmp/home/cnn.weights.h5")
model.load_weights("/tmp/home/cnn.weights.h5")
accuracy = float(model.evaluate(x, y, verbose=0)[1])
n_layers = len(model.get_config()["layers"])
""",
    "forbidden": "try:\n    import scipy\n    scipy_seen = True\nexcept ImportError:\n"
    "    scipy_seen = False",
    "bomb": """
def bomb():
    blocks = []
    try:
        while True:
            blocks.append(np.ones(50_000_000, dtype=np.uint8))
    except MemoryError:
        return f"MemoryError after {len(blocks) * 50} MB"
""",
}


def test_keras_submission_runs_and_its_memory_bomb_is_stopped():
    cfg = sandbox.SandboxConfig(
        mode="bubblewrap",
        packages=KERAS_SANDBOX["sandbox_packages"],
        memory_mb=KERAS_SANDBOX["memory_mb"],
        address_space_mb=KERAS_SANDBOX["address_space_mb"],
    )
    worker = sandbox.Sandbox(cfg).spawn()
    deadline = time.monotonic() + 300
    try:
        assert wire.recv(worker.from_child, deadline)["ev"] == "hello"
        cells = [{"id": k, "source": v} for k, v in CELLS.items()]
        wire.send(worker.to_child, {"cells": cells}, deadline)
        done = {}
        while (msg := wire.recv(worker.from_child, deadline))["ev"] != "ready":
            if msg["ev"] == "done":
                done[msg["cell"]] = msg
        for cell in CELLS:
            assert done[cell]["ok"], (cell, done[cell]["error"])
        assert get(worker, "backend") == "tensorflow"
        assert 0.0 <= get(worker, "accuracy") <= 1.0 and get(worker, "n_layers") == 7
        assert get(worker, "scipy_seen") is False
        wire.send(worker.to_child, {"op": "call", "name": "bomb"}, deadline)
        try:
            answer = wire.recv(worker.from_child, deadline)
            # the address-space limit stops an ordinary allocation: a MemoryError
            assert answer["value"].startswith("MemoryError after"), answer
        except wire.PeerGone:  # anything else: the memory cgroup kills the worker
            assert "ran out of memory" in worker.exit_description()
    finally:
        worker.kill()
