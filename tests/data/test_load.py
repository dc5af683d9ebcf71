"""tfgen.data.load: the TFDS path (mocked), IDX directories, the bundled digits, errors."""

import gzip
import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfgen import data
from tfgen.registry import UnknownNameError


def _check_batches(ds, batch, shape=(28, 28, 1)):
    images, labels = next(iter(ds))
    assert images.dtype.name == "float32" and labels.dtype.name == "int32"
    assert tuple(images.shape) == (batch, *shape)
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0
    return images.numpy(), labels.numpy()


def test_tfds_path_through_mock_data(monkeypatch):
    # mock_data replaces TFDS's download and reading; the builder still reports "not
    # prepared", so tell the offline guard there is a network (nothing is fetched).
    monkeypatch.setattr("tfgen.data.tfds.network_available", lambda: True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8)
    digits = rng.integers(0, 10, 20)

    # Known examples instead of TFDS's random ones, so the test can check the values
    # that come out. (The default mock maps an identity lambda whose AutoGraph
    # conversion re-parses TFDS's source, which late in a long test process once took
    # 100 s instead of 1 s.)
    def as_dataset(builder, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"image": pixels, "label": digits})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        ds, info = data.load("mnist", "train", batch_size=4, shuffle=False, with_info=True)
        images, labels = _check_batches(ds, 4)
        assert info.image_shape == (28, 28, 1) and info.num_classes == 10
        np.testing.assert_allclose(images, pixels[:4] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(labels, digits[:4])
        assert sum(int(x.shape[0]) for x, _ in ds) == 20


def test_tfds_unknown_name_and_offline_errors_are_fast_and_clear(tmp_path, monkeypatch):
    with pytest.raises(UnknownNameError, match="unknown dataset 'not_a_dataset'.*mnist_bundled.*idx:DIR"):
        data.load("not_a_dataset")
    # Fast because TFDS never starts a download (which retries for minutes offline): checked on that, not a clock.
    def no_download(*args, **kwargs):
        raise AssertionError("TFDS was asked to download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(data.DataUnavailableError, match="download=False.*Offline options.*mnist_bundled"):
        data.load("mnist", data_dir=str(tmp_path), download=False)
    # With download allowed but no network, the check answers at once instead of TFDS retrying.
    monkeypatch.setattr("tfgen.data.tfds.network_available", lambda: False)
    with pytest.raises(data.DataUnavailableError, match="no network.*Offline options"):
        data.load("mnist", data_dir=str(tmp_path))


def _write_idx(path, array, dtype_code=0x08):
    header = struct.pack(">BBBB", 0, 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(">u1").tobytes())


def test_idx_directory(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    ds, info = data.load(f"idx:{tmp_path}", "test", batch_size=5, shuffle=False, with_info=True)
    images, _ = _check_batches(ds, 5)
    assert info.num_examples == 10
    raw = np.frombuffer(gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)
    np.testing.assert_allclose(images[0, :, :, 0], raw[:784].reshape(28, 28) / 255.0, atol=1e-6)


def test_bundled_digits_shapes_labels_and_split():
    x_train, y_train = data.load_bundled("train")
    x_test, y_test = data.load_bundled("test")
    assert len(x_train) + len(x_test) >= 5000
    assert x_train.shape[1:] == x_test.shape[1:] == (28, 28) and x_train.dtype == np.uint8
    for labels in (y_train, y_test):
        assert set(np.unique(labels)) == set(range(10))
    # Real digits, not noise: mostly background, with bright strokes.
    assert 0.6 < (x_train == 0).mean() < 0.9 and x_train.max() == 255
    # The split is fixed and disjoint.
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_test)


def test_seeded_shuffle_is_reproducible_and_differs_by_seed():
    first = lambda seed: next(iter(data.load("mnist_bundled", batch_size=16, seed=seed)))[1].numpy()
    np.testing.assert_array_equal(first(1), first(1))
    assert not np.array_equal(first(1), first(2))


def test_load_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        data.load("mnist_bundled", batch_size=0)
    with pytest.raises(ValueError, match="unknown split .*; choose from train, test"):
        data.load("mnist_bundled", split="validation")
    with pytest.raises(ValueError, match=r"shape \(28, 28, 1\), but the model expects \(32, 32, 3\)"):
        data.load("mnist_bundled", image_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"labels up to 9, but the model has num_classes=5"):
        data.load("mnist_bundled", num_classes=5)


def test_manual_dir_with_recompressed_files_fails_in_one_line_pointing_to_idx_and_leaves_no_folders(tmp_path):
    """Valid IDX files that are not byte-for-byte TFDS's (as Debian's recompressed Fashion-MNIST): one line
    naming the file and `idx:DIR`; the empty folders TFDS makes before failing are removed."""
    manual = tmp_path / "manual"
    manual.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        _write_idx(manual / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(manual / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    store = tmp_path / "tfds"
    with pytest.raises(data.DataUnavailableError) as info:
        data.load("fashion_mnist", data_dir=str(store), manual_dir=str(manual))
    message = str(info.value)
    assert "\n" not in message and "-ubyte.gz in " in message and "checksum differs" in message, message
    assert message.endswith(f"--dataset idx:{manual}"), message
    assert not store.exists() or not any(store.rglob("*")), sorted(store.rglob("*"))
    # What the message suggests works on the same files.
    assert data.load(f"idx:{manual}", "train", batch_size=2, with_info=True)[1].num_examples == 6
