"""Datasets for the course, offline first (introduced in chapter 1).

Every loader looks in the local data folder named by the ``CNN_COURSE_DATA``
environment variable first (the layout of an offline classroom copy, see
README "Offline or air-gapped classroom"), and otherwise uses the standard
Keras download. When neither works it raises :class:`DatasetUnavailableError`
naming the dataset, the file it looked for, the setting and the download
address, instead of a traceback from inside Keras.

The data folder is only ever read. Decoded copies that are slow to rebuild
(CIFAR-10 from JPEG, the extracted ants-vs-bees photos) go to a cache folder,
``CNN_COURSE_CACHE`` or ``~/.cache/cnn_course``.

All loaders return what ``keras.datasets`` returns:
``(x_train, y_train), (x_test, y_test)`` as uint8 NumPy arrays.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

DATA_SETTING = "CNN_COURSE_DATA"
CACHE_SETTING = "CNN_COURSE_CACHE"
OUTPUT_SETTING = "CNN_COURSE_OUTPUT"

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
FASHION_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
IMAGENET_CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

FASHION_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


class DataError(RuntimeError):
    """Base class for the data problems a course user can run into."""


class DataSettingError(DataError):
    """``CNN_COURSE_DATA`` names something that is not a readable folder."""


class DatasetUnavailableError(DataError):
    """Neither the local copy nor the Keras download could provide a dataset."""

    def __init__(self, dataset: str, looked_for: str, url: str, reason: str):
        self.dataset, self.looked_for, self.url = dataset, looked_for, url
        super().__init__(
            f"{dataset} is not available. Looked for {looked_for} "
            f"(folder set by the {DATA_SETTING} environment variable), then tried "
            f"the download from {url}, which failed: {reason}. "
            f"Point {DATA_SETTING} at a folder holding the course data "
            f"(README, 'Offline or air-gapped classroom') or connect to the internet."
        )


# --- where to look -----------------------------------------------------------


def data_dir() -> Path | None:
    """The local data folder named by ``CNN_COURSE_DATA``, or None if unset.

    Raises DataSettingError when the setting names a folder that does not exist,
    since falling back to a download would hide the typo.
    """
    value = os.environ.get(DATA_SETTING, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataSettingError(
            f"{DATA_SETTING}={value!r} is not a folder. Set it to the folder that "
            f"holds the course data (mnist.npz, cifar10_jpeg.tar.gz, ...) or unset "
            f"it to download from the internet."
        )
    return path


def cache_dir() -> Path:
    """Writable folder for decoded copies: ``CNN_COURSE_CACHE`` or ~/.cache/cnn_course."""
    value = os.environ.get(CACHE_SETTING, "").strip()
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "cnn_course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_dir(name: str) -> Path:
    """An empty writable folder for what a chapter writes while it runs (chapters 14, 15).

    Tuner trials, saved models and exported images go here, never into the
    working directory (the repository, when the book is built): under
    ``CNN_COURSE_OUTPUT`` when it is set (the book's runner sets it to
    ``<build>/outputs``), else under the system's temporary folder. The folder
    ``name`` is emptied first, so running a chapter again starts afresh.
    """
    if not name or name in {".", ".."} or Path(name).name != name or "\\" in name:
        raise ValueError(f"output folder name must be a plain folder name, got {name!r}")
    value = os.environ.get(OUTPUT_SETTING, "").strip()
    base = Path(value).expanduser() if value else Path(tempfile.gettempdir()) / "cnn_course"
    path = base / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _local_file(*candidates: str) -> tuple[Path | None, str]:
    """First existing candidate under the data folder, and a description of the search."""
    folder = data_dir()
    if folder is None:
        return None, f"{candidates[0]} ({DATA_SETTING} is not set)"
    for name in candidates:
        if (folder / name).exists():
            return folder / name, str(folder / name)
    return None, str(folder / candidates[0])


def _download(dataset: str, looked_for: str, url: str, fetch):
    """Run a Keras download, turning any failure into DatasetUnavailableError."""
    try:
        return fetch()
    except Exception as error:  # Keras raises bare Exception on URL failures.
        reason = f"{type(error).__name__}: {error}".strip()
        raise DatasetUnavailableError(dataset, looked_for, url, reason) from error


# --- MNIST and Fashion-MNIST -------------------------------------------------


def load_mnist():
    """MNIST digits: 60,000 train and 10,000 test images, 28x28 uint8.

    The local copy is read with ``numpy.load``, never placed in Keras's cache:
    Keras checks the file's hash and deletes a copy that differs from its own.
    """
    local, looked_for = _local_file("mnist.npz")
    if local is not None:
        with np.load(local) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])

    def fetch():
        import keras

        return keras.datasets.mnist.load_data()

    return _download("MNIST", looked_for, MNIST_URL, fetch)


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the format of MNIST and Fashion-MNIST)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist():
    """Fashion-MNIST clothing images, same layout as MNIST."""
    folder = data_dir()
    candidates = ("keras_home/datasets/fashion-mnist", "fashion-mnist")
    if folder is not None:
        for sub in candidates:
            if all((folder / sub / name).exists() for name in FASHION_MNIST_FILES):
                y_train, x_train, y_test, x_test = (
                    _read_idx(folder / sub / name) for name in FASHION_MNIST_FILES
                )
                return (x_train, y_train), (x_test, y_test)
        looked_for = str(folder / candidates[0] / FASHION_MNIST_FILES[1])
    else:
        looked_for = f"{candidates[0]}/{FASHION_MNIST_FILES[1]} ({DATA_SETTING} is not set)"

    def fetch():
        import keras

        return keras.datasets.fashion_mnist.load_data()

    return _download("Fashion-MNIST", looked_for, FASHION_MNIST_URL, fetch)


# --- CIFAR-10 ----------------------------------------------------------------


def _decode_cifar10_jpegs(archive: Path):
    """Decode ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` from a tar.gz.

    Images are put in one fixed shuffled order (seed 0): sorted by class they
    would make ``x_train[:n]`` a single class, unlike Keras's copy.
    """
    from PIL import Image

    images = {"train": {}, "test": {}}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not (member.isfile() and len(parts) == 3 and parts[2].endswith(".jpg")):
                continue
            split, label, name = parts
            if split not in images or label not in CIFAR10_CLASSES:
                continue
            blob = tar.extractfile(member).read()
            pixels = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
            images[split][(CIFAR10_CLASSES.index(label), name)] = pixels
    result = []
    for split in ("train", "test"):
        keys = sorted(images[split])
        order = np.random.default_rng(0).permutation(len(keys))
        keys = [keys[i] for i in order]
        x = np.stack([images[split][k] for k in keys]).astype(np.uint8)
        y = np.array([[label] for label, _ in keys], dtype=np.uint8)
        result.append((x, y))
    return tuple(result)


def _cached(name: str, source: Path) -> Path:
    """Cache path for a file derived from ``source``, keyed by its size and mtime."""
    stat = source.stat()
    return cache_dir() / f"{name}-v2-{stat.st_size}-{int(stat.st_mtime)}.npz"


def load_cifar10():
    """CIFAR-10: 50,000 train and 10,000 test RGB images, 32x32, labels of shape (N, 1).

    The offline copy holds JPEG re-encodings (about quality 75), so pixels are
    close to, not identical with, the original: accuracies run slightly lower.
    The first call decodes the 60,000 JPEGs (about 20 s) into the cache folder.
    """
    local, looked_for = _local_file("cifar10_jpeg.tar.gz")
    if local is not None:
        cached = _cached("cifar10", local)
        if not cached.exists():
            (x_train, y_train), (x_test, y_test) = _decode_cifar10_jpegs(local)
            _atomic_savez(cached, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        with np.load(cached) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])

    def fetch():
        import keras

        return keras.datasets.cifar10.load_data()

    return _download("CIFAR-10", looked_for, CIFAR10_URL, fetch)


def _atomic_savez(path: Path, **arrays) -> None:
    """Write an .npz so that a concurrent reader never sees half a file."""
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, path)


# --- ants vs bees photos -----------------------------------------------------


def hymenoptera_dir() -> Path:
    """Folder of the ants-vs-bees photos: ``train/{ants,bees}``, ``val/{ants,bees}``.

    The archive is extracted once into the cache folder (the data folder stays
    untouched); read the images with ``keras.utils.image_dataset_from_directory``.
    """
    local, looked_for = _local_file("hymenoptera_data.tar.gz", "hymenoptera_data")
    if local is not None and local.is_dir():
        return local
    if local is not None:
        target = cache_dir() / f"hymenoptera-{local.stat().st_size}"
        if not (target / "hymenoptera_data" / "val").is_dir():
            staging = Path(tempfile.mkdtemp(dir=cache_dir()))
            with tarfile.open(local) as tar:
                tar.extractall(staging, filter="data")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        return target / "hymenoptera_data"

    def fetch():
        import keras

        archive = keras.utils.get_file(
            "hymenoptera_data.zip", HYMENOPTERA_URL, extract=True
        )
        return Path(archive) / "hymenoptera_data"

    return _download("The ants-vs-bees photos", looked_for, HYMENOPTERA_URL, fetch)


# --- ImageNet class names ----------------------------------------------------


def imagenet_class_index() -> dict[int, tuple[str, str]]:
    """ImageNet's 1000 classes: index -> (WordNet id, readable name)."""
    local, looked_for = _local_file("imagenet_class_index.json")
    if local is None:

        def fetch():
            import keras

            return keras.utils.get_file("imagenet_class_index.json", IMAGENET_CLASS_INDEX_URL)

        local = Path(_download("The ImageNet class index", looked_for,
                               IMAGENET_CLASS_INDEX_URL, fetch))  # fmt: skip
    raw = json.loads(local.read_text(encoding="utf-8"))
    return {int(k): (v[0], v[1]) for k, v in raw.items()}


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in label order ("tench", "goldfish", ...)."""
    index = imagenet_class_index()
    return [index[i][1] for i in range(len(index))]


def decode_imagenet_predictions(preds, top: int = 5):
    """Like ``keras.applications.imagenet_utils.decode_predictions``, offline.

    Keras's version insists on its own copy of the class index (md5-checked,
    downloaded), which an offline classroom does not have.
    Returns, per image, a list of ``(wordnet_id, name, score)``, best first.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"expected predictions of shape (N, 1000), got {preds.shape}")
    index = imagenet_class_index()
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(*index[int(i)], float(row[i])) for i in best])
    return results


# --- a real photo for figures ------------------------------------------------


def sample_photo(name: str = "chelsea") -> np.ndarray:
    """A real RGB photo bundled with scikit-image (no download): uint8, H x W x 3.

    ``name`` is any colour image in ``skimage.data`` ("chelsea" the cat,
    "coffee", "astronaut", "rocket").
    """
    import skimage.data

    if name not in {"chelsea", "coffee", "astronaut", "rocket"}:
        raise ValueError(f"unknown sample photo {name!r}")
    return np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
