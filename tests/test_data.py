"""Offline-first data loaders: local folder first, Keras download second, a clear
message when neither works, and the data folder never written to."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_course import data

# A proxy that refuses every connection: "no internet", whatever the machine has.
NO_INTERNET = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


def _idx_gz(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _jpeg(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), rgb).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> Path:
    """A small data folder laid out like the course's offline copy."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        folder / "mnist.npz",
        x_train=rng.integers(0, 255, (6, 28, 28), dtype=np.uint8),
        y_train=np.arange(6, dtype=np.uint8),
        x_test=rng.integers(0, 255, (2, 28, 28), dtype=np.uint8),
        y_test=np.arange(2, dtype=np.uint8),
    )
    fashion = folder / "keras_home" / "datasets" / "fashion-mnist"
    fashion.mkdir(parents=True)
    _idx_gz(fashion / "train-images-idx3-ubyte.gz", np.full((5, 28, 28), 7))
    _idx_gz(fashion / "train-labels-idx1-ubyte.gz", np.arange(5))
    _idx_gz(fashion / "t10k-images-idx3-ubyte.gz", np.full((3, 28, 28), 9))
    _idx_gz(fashion / "t10k-labels-idx1-ubyte.gz", np.array([4, 5, 6]))
    with tarfile.open(folder / "cifar10_jpeg.tar.gz", "w:gz") as tar:
        _add(tar, "README.md", b"not an image")
        for split, count in (("train", 3), ("test", 1)):
            for label, colour in (("cat", (250, 0, 0)), ("truck", (0, 0, 250))):
                for i in range(count):
                    _add(tar, f"{split}/{label}/{i:04d}.jpg", _jpeg(colour))
    with tarfile.open(folder / "hymenoptera_data.tar.gz", "w:gz") as tar:
        for split in ("train", "val"):
            for label in ("ants", "bees"):
                _add(tar, f"hymenoptera_data/{split}/{label}/0.jpg", _jpeg((0, 250, 0)))
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (folder / "imagenet_class_index.json").write_text(json.dumps(index))
    monkeypatch.setenv("CNN_COURSE_DATA", str(folder))
    monkeypatch.setenv("CNN_COURSE_CACHE", str(tmp_path / "cache"))
    return folder


def _snapshot(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_mnist_comes_from_the_local_npz(tiny_data):
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (6, 28, 28) and x_train.dtype == np.uint8
    assert y_train.tolist() == list(range(6))
    assert x_test.shape == (2, 28, 28)


def test_fashion_mnist_is_read_from_the_idx_files(tiny_data):
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert x_train.shape == (5, 28, 28) and int(x_train[0, 0, 0]) == 7
    assert y_test.tolist() == [4, 5, 6]


def test_cifar10_is_decoded_with_keras_label_layout_and_cached(tiny_data):
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (6, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (6, 1) and y_test.shape == (2, 1)
    cat, truck = data.CIFAR10_CLASSES.index("cat"), data.CIFAR10_CLASSES.index("truck")
    # Red images are cats, blue images trucks, whatever order the shuffle chose.
    reds = x_train[..., 0].mean(axis=(1, 2)) > 128
    assert (y_train[:, 0] == np.where(reds, cat, truck)).all()
    assert list((Path(os.environ["CNN_COURSE_CACHE"])).glob("cifar10-*.npz"))


def test_hymenoptera_is_extracted_into_the_cache_not_the_data_folder(tiny_data):
    folder = data.hymenoptera_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["train", "val"]
    assert (folder / "val" / "bees" / "0.jpg").exists()
    assert Path(os.environ["CNN_COURSE_CACHE"]) in folder.parents


def test_imagenet_names_and_offline_decoding(tiny_data):
    assert data.imagenet_class_names()[:2] == ["class_0", "class_1"]
    preds = np.zeros((2, 1000))
    preds[0, 7], preds[1, 3] = 0.9, 0.8
    decoded = data.decode_imagenet_predictions(preds, top=1)
    assert decoded == [[("n00000007", "class_7", 0.9)], [("n00000003", "class_3", 0.8)]]


def test_decode_rejects_predictions_of_the_wrong_shape(tiny_data):
    with pytest.raises(ValueError, match=r"shape \(N, 1000\)"):
        data.decode_imagenet_predictions(np.zeros((1, 10)))


def test_loaders_never_write_into_the_data_folder(tiny_data):
    before = _snapshot(tiny_data)
    data.load_mnist()
    data.load_fashion_mnist()
    data.load_cifar10()
    data.hymenoptera_dir()
    data.imagenet_class_names()
    assert _snapshot(tiny_data) == before


def test_a_setting_that_names_no_folder_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path / "typo"))
    with pytest.raises(data.DataSettingError, match="is not a folder"):
        data.load_mnist()


def test_missing_data_without_internet_names_dataset_file_setting_and_url(tmp_path):
    """Run in a fresh process so no Keras cache or earlier import can help."""
    env = {**os.environ, **NO_INTERNET, "KERAS_HOME": str(tmp_path / "keras_home")}
    env["CNN_COURSE_DATA"] = str(tmp_path)  # an existing folder without the file
    code = "from cnn_course import data; data.load_mnist()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cnn_course.data.DatasetUnavailableError: MNIST is not available")
    assert str(tmp_path / "mnist.npz") in last
    assert "CNN_COURSE_DATA" in last
    assert data.MNIST_URL in last


def test_missing_setting_is_named_in_the_message(monkeypatch):
    monkeypatch.delenv("CNN_COURSE_DATA", raising=False)

    def offline():
        raise Exception("URL fetch failure: no internet")  # what Keras raises

    with pytest.raises(data.DatasetUnavailableError) as error:
        data._download("CIFAR-10", data._local_file("cifar10_jpeg.tar.gz")[1],
                       data.CIFAR10_URL, offline)  # fmt: skip
    message = str(error.value)
    assert "cifar10_jpeg.tar.gz (CNN_COURSE_DATA is not set)" in message
    assert data.CIFAR10_URL in message and "URL fetch failure" in message


# --- the real offline copy ---------------------------------------------------


def test_real_mnist_and_cifar10_have_the_published_sizes(shared_data, monkeypatch):
    monkeypatch.setenv("CNN_COURSE_DATA", str(shared_data))
    (x_train, _), (x_test, _) = data.load_mnist()
    assert (len(x_train), len(x_test)) == (60_000, 10_000)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (50_000, 32, 32, 3) and x_test.shape == (10_000, 32, 32, 3)
    assert np.bincount(y_test[:, 0]).tolist() == [1000] * 10
    # Shuffled: the first thousand training images cover every class.
    assert len(np.unique(y_train[:1000])) == 10


def test_mobilenet_v2_loads_imagenet_weights_from_keras_home(shared_data, tmp_path):
    """The ordinary Keras call works offline once KERAS_HOME holds the weights."""
    import shutil

    keras_home = tmp_path / "keras_home"
    shutil.copytree(shared_data / "keras_home", keras_home)
    code = (
        "import numpy as np, keras\n"
        "from cnn_course import data\n"
        "model = keras.applications.MobileNetV2(weights='imagenet')\n"
        "photo = keras.ops.image.resize(data.sample_photo('chelsea')[None], (224, 224))\n"
        "x = keras.applications.mobilenet_v2.preprocess_input(np.array(photo))\n"
        "print(data.decode_imagenet_predictions(model.predict(x, verbose=0), top=5)[0])\n"
    )
    env = {**os.environ, **NO_INTERNET, "KERAS_HOME": str(keras_home),
           "CNN_COURSE_DATA": str(shared_data), "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cat" in result.stdout.splitlines()[-1]  # chelsea is a tabby cat
