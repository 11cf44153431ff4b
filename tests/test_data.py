"""Data loading: IDX parsing, checksums of the genuine test set, mnist5k splits, clear errors."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from paper_repro import data
from paper_repro.errors import PaperReproError

# From ../shared/data/mnist/README.md.
TEST_IMAGES_SHA256 = "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    img_name, lab_name = data.FILES[split]
    n = images.shape[0]
    with gzip.open(folder / img_name, "wb") as fh:
        fh.write(struct.pack(">HBBIII", 0, 8, 3, n, 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(folder / lab_name, "wb") as fh:
        fh.write(struct.pack(">HBBI", 0, 8, 1, n) + labels.astype(np.uint8).tobytes())


def test_idx_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(7, 28, 28))
    labs = rng.integers(0, 10, size=7)
    write_idx(tmp_path, "train", imgs, labs)
    split = data.load_mnist("train", tmp_path, download=False, verify=False)
    assert split.images.shape == (7, 784) and split.images.dtype == np.float32
    np.testing.assert_allclose(split.images * 255.0, imgs.reshape(7, 784), atol=1e-4)
    np.testing.assert_array_equal(split.labels, labs)
    assert split.name == "mnist:train"


def test_truncated_idx_is_a_clear_error(tmp_path):
    imgs = np.zeros((3, 28, 28))
    write_idx(tmp_path, "test", imgs, np.zeros(3))
    path = tmp_path / data.FILES["test"][0]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(PaperReproError, match="corrupt IDX file t10k-images"):
        data.load_mnist("test", tmp_path, download=False)


def test_not_gzip_is_a_clear_error(tmp_path):
    write_idx(tmp_path, "test", np.zeros((2, 28, 28)), np.zeros(2))
    (tmp_path / data.FILES["test"][1]).write_bytes(b"this is not gzip")
    with pytest.raises(PaperReproError, match="corrupt MNIST file"):
        data.load_mnist("test", tmp_path, download=False)


def test_missing_file_names_file_and_folder(tmp_path):
    with pytest.raises(PaperReproError) as err:
        data.load_mnist("train", tmp_path, download=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg


def test_env_var_overrides_configured_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.data_dir("/somewhere/else") == tmp_path


def test_each_split_loads_on_its_own(tmp_path):
    write_idx(tmp_path, "test", np.zeros((4, 28, 28)), np.arange(4))
    assert len(data.load_mnist("test", tmp_path, download=False, verify=False)) == 4
    with pytest.raises(PaperReproError, match="missing"):
        data.load_mnist("train", tmp_path, download=False)


def test_genuine_test_set_matches_its_readme(mnist_dir):
    split = data.load_mnist("test", mnist_dir, download=False)
    raw = gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == TEST_IMAGES_SHA256
    assert np.bincount(split.labels).tolist() == TEST_LABEL_COUNTS
    assert split.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert split.images.min() >= 0.0 and split.images.max() <= 1.0


def test_mnist5k_split_is_balanced_disjoint_and_reproducible():
    train = data.load_mnist5k("train", holdout=500, seed=0)
    hold = data.load_mnist5k("holdout", holdout=500, seed=0)
    assert len(train) == 4500 and len(hold) == 500
    assert np.bincount(hold.labels).tolist() == [50] * 10
    train_rows = {r.tobytes() for r in train.images}
    # Distinct digits never cross the split (duplicated pixel rows, if any, may).
    assert sum(r.tobytes() in train_rows for r in hold.images) <= 2
    again = data.load_mnist5k("holdout", holdout=500, seed=0)
    np.testing.assert_array_equal(again.images, hold.images)
    other = data.load_mnist5k("holdout", holdout=500, seed=1)
    assert not np.array_equal(other.labels, hold.labels)


@pytest.mark.parametrize("holdout", [0, 5, 5000])
def test_mnist5k_bad_holdout(holdout):
    with pytest.raises(PaperReproError, match="holdout"):
        data.load_mnist5k("train", holdout=holdout)


def test_auto_test_source_falls_back_to_holdout(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    split = data.load_test("auto", tmp_path, download=False)
    assert split.name == "mnist5k:holdout"


def test_auto_test_source_prefers_genuine(mnist_dir):
    assert data.load_test("auto", mnist_dir).name == "mnist:test"


def test_load_test_image(mnist_dir):
    x, label = data.load_test_image(0, mnist_dir)
    assert x.shape == (784,) and x.dtype == np.float64 and label == 7
    with pytest.raises(PaperReproError, match="out of range"):
        data.load_test_image(10_000, mnist_dir)


# --- published checksums and the search path (issue 15) -------------------------------------


def test_altered_file_fails_the_published_checksum(tmp_path):
    write_idx(tmp_path, "test", np.zeros((3, 28, 28)), np.arange(3))
    with pytest.raises(PaperReproError, match="does not match the published MNIST") as err:
        data.load_mnist("test", tmp_path, download=False)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value)


def test_wrong_magic_is_a_clear_error(tmp_path):
    write_idx(tmp_path, "test", np.zeros((3, 28, 28)), np.arange(3))
    path = tmp_path / data.FILES["test"][1]
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[2] = 0x0D  # float data instead of unsigned bytes
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(PaperReproError, match=r"corrupt IDX file t10k-labels.*bad header"):
        data.load_mnist("test", tmp_path, download=False)


def link_genuine(src: Path, dest: Path, split: str) -> Path:
    """Symlink the genuine ``split`` files of ``src`` into ``dest`` (read in place)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in data.FILES[split]:
        (dest / name).symlink_to(src / name)
    return dest


@pytest.fixture
def search_roots(tmp_path, monkeypatch):
    """Empty stand-ins for the repo's data/mnist and ../shared/data/mnist; no env var."""
    from paper_repro import mnist_files

    repo, shared = tmp_path / "repo-data", tmp_path / "shared-data"
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(mnist_files, "REPO_DATA_DIR", repo)
    monkeypatch.setattr(mnist_files, "SHARED_DATA_DIR", shared)
    return repo, shared


def test_search_path_env_var_wins(search_roots, tmp_path, mnist_dir, monkeypatch):
    repo, _ = search_roots
    link_genuine(mnist_dir, repo, "test")
    env = link_genuine(mnist_dir, tmp_path / "env", "test")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env))
    split = data.load_test("mnist", None, download=False)
    assert split.folder == str(env) and split.name == "mnist:test" and len(split) == 10_000
    # an explicit folder is the only one looked at: missing there is an error, not a fallback
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(PaperReproError, match=r"t10k-images-idx3-ubyte\.gz is missing"):
        data.load_test("mnist", None, download=False)


def test_search_path_repo_data_before_shared(search_roots, mnist_dir):
    repo, shared = search_roots
    link_genuine(mnist_dir, repo, "test")
    link_genuine(mnist_dir, shared, "test")
    split = data.load_test("mnist", None, download=False)
    assert split.folder == str(repo) and split.note == ""


def test_search_path_shared_copy(search_roots, mnist_dir):
    _, shared = search_roots
    link_genuine(mnist_dir, shared, "test")
    split = data.load_test("mnist", None, download=False)
    assert split.folder == str(shared)
    # the shared test files are recompressed: accepted by the sha256 of their decoded bytes
    assert (
        hashlib.md5((shared / data.FILES["test"][0]).read_bytes()).hexdigest()
        != (data.GZ_MD5[data.FILES["test"][0]])
    )


def test_search_path_falls_back_to_mnist5k_with_one_warning(search_roots, capsys, monkeypatch):
    from paper_repro import mnist_files

    monkeypatch.setattr(mnist_files, "_WARNINGS", [])
    train = data.load_train("mnist", None, download=False)
    again = data.load_train("mnist", None, download=False)
    test = data.load_test("mnist", None, download=False)
    assert train.name == "mnist5k:train" and len(train) == 4500 and again.note == train.note
    assert test.name == "mnist5k:holdout" and "mnist5k" in test.note
    err = capsys.readouterr().err
    assert err.count("WARNING: MNIST train files not found") == 1
    assert data.warnings_issued() == [train.note, test.note]
    # with the fallback off, the same situation is one clear error
    with pytest.raises(PaperReproError, match="not found in"):
        data.load_train("mnist", None, download=False, fallback=False)


def test_truncated_gz_is_a_clear_error(tmp_path, mnist_dir):
    images, labels = data.FILES["test"]
    (tmp_path / images).symlink_to(mnist_dir / images)
    payload = (mnist_dir / labels).read_bytes()
    (tmp_path / labels).write_bytes(payload[: len(payload) // 2])
    with pytest.raises(PaperReproError, match=r"corrupt MNIST file .*t10k-labels"):
        data.load_mnist("test", tmp_path, download=False)


def test_fallback_is_recorded_in_model_metadata_and_evaluation(search_roots, tmp_path, monkeypatch):
    import json

    import yaml

    from paper_repro import cli, mnist_files
    from paper_repro.models import load_model

    monkeypatch.setattr(mnist_files, "_WARNINGS", [])
    overlay = tmp_path / "tiny.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "data": {"download": False},
                "training": {"vanilla": {"epochs": 1}},
                "evaluation": {"n_test": 20, "pgd": {"steps": 2}},
            }
        )
    )
    config = ["--config", "config/config.yaml", "--config", str(overlay)]
    model = tmp_path / "m.pt"
    train = ["train", *config, "--arch", "4", "--method", "vanilla", "--out", str(model)]
    assert cli.main(train) == 0
    _, meta = load_model(model)
    assert meta["train_source"] == "mnist5k:train" and "mnist5k" in meta["data_note"]
    assert meta["data_warnings"] == data.warnings_issued() != []
    out = tmp_path / "m.json"
    assert cli.main(["evaluate", *config, "--model", str(model), "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row["test_source"] == "mnist5k:holdout" and "not found" in row["data_note"]
    assert row["provenance"]["data_warnings"]
