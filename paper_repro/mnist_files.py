"""The MNIST IDX files on disk: where they are looked for, downloading, decoding and checking.

Search path (:func:`search_path`): ``$PAPER_REPRO_DATA_DIR`` if set, else the configured
``data.dir`` if set (either is the only folder looked at), else ``data/mnist/`` in the repository
(git-ignored; missing files are downloaded there, md5-checked, when a network answers) and then
``../shared/data/mnist/`` beside the checkout (a read-only offline copy). A file is accepted when
its ``.gz`` md5 is the published one or its decoded bytes have the published sha256 (recompressed
copies); anything else ends with one :class:`PaperReproError`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from paper_repro.config import REPO_ROOT
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
# sha256 of the decoded IDX bytes (../shared/data/mnist/README.md; recompressed copies keep them).
RAW_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


REPO_DATA_DIR = REPO_ROOT / "data" / "mnist"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"
_WARNINGS: list[str] = []


def search_path(directory: str | Path | None = None) -> tuple[list[Path], bool]:
    """Folders to read MNIST from, in order, and whether they were named explicitly.

    ``$PAPER_REPRO_DATA_DIR`` if set, else ``directory`` (the configured ``data.dir``) if given —
    each the only folder, explicit — else ``[data/mnist in the repo, ../shared/data/mnist]``.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return [Path(env).expanduser()], True
    if directory is not None:
        return [Path(directory).expanduser()], True
    return [REPO_DATA_DIR, SHARED_DATA_DIR], False


def data_dir(configured: str | Path | None = None) -> Path:
    """The MNIST folder in use: the explicit one (``$PAPER_REPRO_DATA_DIR``, else ``configured``),
    else the first folder of the default search path holding the test files, else the repo's."""
    folders, explicit = search_path(configured)
    if explicit:
        return folders[0]
    for folder in folders:
        if all((folder / f).is_file() for f in FILES["test"]):
            return folder
    return folders[0]


def config_dir(data_config: dict[str, Any]) -> Path | None:
    """The configured ``data.dir`` resolved from the repo root, or ``None`` (search path)."""
    from paper_repro.config import resolve_path

    value = data_config.get("dir")
    return None if value is None else resolve_path(value)


def warn(message: str) -> None:
    """Print ``message`` once per process as a loud banner on stderr and keep it for
    :func:`warnings_issued` (recorded in every result's provenance)."""
    if message in _WARNINGS:
        return
    _WARNINGS.append(message)
    bar = "!" * 78
    print(f"{bar}\nWARNING: {message}\n{bar}", file=sys.stderr)


def warnings_issued() -> list[str]:
    """The data warnings of this process (e.g. the ``mnist5k`` fallback), in order."""
    return list(_WARNINGS)


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
        except (OSError, ValueError):
            continue
        if hashlib.md5(payload).hexdigest() != GZ_MD5[filename]:
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".part")
            tmp.write_bytes(payload)
            tmp.replace(dest)
        except OSError:
            return False
        return True
    return False


def locate(split: str, directory: str | Path | None = None, download: bool = True) -> Path | None:
    """The folder to read ``split``'s two files from (see :func:`search_path`).

    An explicit folder is returned when it holds both files (missing ones downloaded into it
    when ``download``); otherwise one error names the file and the folder. On the default search
    path the first folder holding both files wins; failing that, missing files are downloaded
    into the repo's ``data/mnist`` when ``download``; ``None`` when nothing worked (offline).
    """
    if split not in FILES:
        raise PaperReproError(f"unknown MNIST split {split!r}: expected train or test")
    folders, explicit = search_path(directory)
    names = FILES[split]
    if not explicit:
        for folder in folders:
            if all((folder / f).is_file() for f in names):
                return folder
        if not download:
            return None
    target = folders[0]
    for name in names:
        path = target / name
        if path.is_file() or (download and _download(name, path)):
            continue
        if not explicit:
            return None
        how = "and no download mirror answered" if download else "and downloading is off"
        raise PaperReproError(
            f"MNIST file {name} is missing: looked for {path.resolve()} {how}. "
            f"Set data.dir in the config or ${DATA_DIR_ENV} to a folder holding it."
        )
    return target


def read_idx(path: Path, expect_ndim: int) -> tuple[np.ndarray, bytes, bytes]:
    """Decode and parse one IDX ``.gz`` file: ``(array, .gz bytes, decoded bytes)``.

    Raises:
        PaperReproError: not gzip, truncated, or a bad IDX header / length.
    """
    try:
        packed = path.read_bytes()
        raw = gzip.decompress(packed)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise PaperReproError(f"corrupt MNIST file {path}: {exc}") from None
    return _parse_idx(raw, path.name, expect_ndim), packed, raw


def check_published(path: Path, packed: bytes, raw: bytes) -> None:
    """Accept a file whose ``.gz`` md5 is the published one or whose decoded bytes have the
    published sha256 (recompressed copies); otherwise one :class:`PaperReproError`."""
    if path.name not in GZ_MD5:
        raise PaperReproError(f"{path.name} is not an MNIST file name")
    md5 = hashlib.md5(packed).hexdigest()
    if md5 == GZ_MD5[path.name]:
        return
    digest = hashlib.sha256(raw).hexdigest()
    if digest != RAW_SHA256[path.name]:
        raise PaperReproError(
            f"MNIST file {path} does not match the published MNIST: .gz md5 {md5} "
            f"(expected {GZ_MD5[path.name]}) and decoded sha256 {digest} "
            f"(expected {RAW_SHA256[path.name]})"
        )
