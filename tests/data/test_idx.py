"""Tests for tfgen.data.idx, the IDX (MNIST file format) reader.

Files are written here by an independent little encoder (struct + numpy), so a
bug shared by reader and writer cannot hide; no network is used.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from tfgen.data.idx import IdxFormatError, find_idx_split, load_idx_split, read_idx

try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # the seeded numpy fuzz loop below still runs
    hypothesis = None

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode `arr` as IDX: magic, big-endian uint32 dims, big-endian data."""
    arr = np.asarray(arr)
    code = CODES[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def random_array(rng, dtype, shape):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def assert_idx_error(path: Path, match: str):
    """read_idx(path) raises IdxFormatError with a one-line message naming the file."""
    with pytest.raises(IdxFormatError, match=match) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("dtype", list(CODES), ids=lambda t: t.__name__)
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4), (2, 1, 3, 2), (0, 28, 28)])
def test_round_trip(tmp_path, gz, dtype, shape):
    arr = random_array(np.random.default_rng(0), dtype, shape)
    path = write(tmp_path / "f.idx", idx_bytes(arr), gz=gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)  # native byte order, not big-endian
    assert out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, arr)
    out[...] = 0  # the result is a writable array the caller owns


def test_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_no_suffix = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(arr), gz=True)
    plain_gz_suffix = write(tmp_path / "plain.gz", idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(gz_no_suffix), arr)
    np.testing.assert_array_equal(read_idx(plain_gz_suffix), arr)


def test_accepts_str_path_and_multi_member_gzip(tmp_path):
    payload = idx_bytes(np.arange(10, dtype=np.int16))
    # Concatenated gzip members are one valid gzip stream (RFC 1952).
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(payload[:9]) + gzip.compress(payload[9:]))
    np.testing.assert_array_equal(read_idx(str(path)), np.arange(10))


def test_error_type_is_value_error():
    assert issubclass(IdxFormatError, ValueError)


# --------------------------------------------------------------------------- header / data errors


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_empty_file(tmp_path, gz):
    assert_idx_error(write(tmp_path / "empty", b"", gz=gz), "file is empty")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_wrong_magic(tmp_path, gz):
    payload = bytearray(idx_bytes(np.zeros((2, 2, 2), np.uint8)))
    payload[1] = 0x01
    msg = assert_idx_error(write(tmp_path / "m", bytes(payload), gz=gz), "bad magic number 0x00010803")
    assert "0x00 0x00" in msg


def test_text_file_is_not_idx(tmp_path):
    assert_idx_error(write(tmp_path / "README", b"hello world\n"), "bad magic number")


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_unknown_dtype_code(tmp_path, code):
    payload = bytes([0, 0, code, 1]) + struct.pack(">I", 0)
    msg = assert_idx_error(write(tmp_path / "c", payload), f"unknown data type code 0x{code:02X}")
    assert "0x08 (uint8)" in msg and "0x0E (float64)" in msg


def test_zero_dimensions(tmp_path):
    assert_idx_error(write(tmp_path / "z", bytes([0, 0, 8, 0])), "0 dimensions")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_magic(tmp_path, gz):
    assert_idx_error(write(tmp_path / "t", b"\x00\x00\x08", gz=gz), "truncated.*needs 4 bytes, found 3")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_header(tmp_path, gz):
    payload = idx_bytes(np.zeros((2, 3, 4), np.uint8))[:10]
    assert_idx_error(write(tmp_path / "h", payload, gz=gz), r"truncated: header with 3 dimension\(s\) needs 16 bytes, found 10")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_data(tmp_path, gz):
    payload = idx_bytes(np.zeros((100, 28, 28), np.uint8))
    path = write(tmp_path / "train-images-idx3-ubyte.gz", payload[: 16 + 1200], gz=gz)
    assert_idx_error(path, "file is truncated: header promises 78400 bytes of data .*found 1200")


def test_truncated_data_multibyte(tmp_path):
    payload = idx_bytes(np.zeros((3, 2), np.float64))  # 48 data bytes
    assert_idx_error(write(tmp_path / "f", payload[:-1]), "promises 48 bytes of data .*found 47")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_trailing_bytes(tmp_path, gz):
    payload = idx_bytes(np.zeros((2, 3), np.int32)) + b"\x00" * 5
    assert_idx_error(write(tmp_path / "x", payload, gz=gz), "5 unexpected trailing byte.*exactly 24 bytes")


def test_huge_promised_size_is_not_allocated(tmp_path):
    # A corrupt header may promise ~2**32 ** 3 bytes; it must be a clean error.
    payload = bytes([0, 0, 0x0E, 3]) + b"\xff" * 12 + b"\x01\x02"
    assert_idx_error(write(tmp_path / "big", payload), "truncated: header promises .* found 2")


# --------------------------------------------------------------------------- gzip errors


def _valid_gz(tmp_path) -> bytes:
    return gzip.compress(idx_bytes(random_array(np.random.default_rng(1), np.uint8, (20, 8, 8))))


def test_corrupt_gzip_deflate_data(tmp_path):
    blob = bytearray(_valid_gz(tmp_path))
    for i in range(12, len(blob) - 8):  # scribble over the deflate stream
        blob[i] ^= 0x5A
    assert_idx_error(write(tmp_path / "c.gz", bytes(blob)), "corrupt gzip stream")


def test_gzip_crc_mismatch(tmp_path):
    blob = bytearray(_valid_gz(tmp_path))
    blob[-8] ^= 0xFF  # CRC32 field of the trailer
    assert_idx_error(write(tmp_path / "crc.gz", bytes(blob)), "corrupt gzip stream")


def test_gzip_stream_cut_short(tmp_path):
    blob = _valid_gz(tmp_path)
    assert_idx_error(write(tmp_path / "short.gz", blob[: len(blob) // 2]), "corrupt gzip stream")


def test_gzip_bad_header(tmp_path):
    # gzip magic followed by an unknown compression method.
    assert_idx_error(write(tmp_path / "hdr.gz", b"\x1f\x8b\x07" + b"\x00" * 20), "corrupt gzip stream")


def test_gzip_trailing_garbage(tmp_path):
    blob = _valid_gz(tmp_path) + b"not gzip"
    assert_idx_error(write(tmp_path / "tail.gz", blob), "corrupt gzip stream")


def test_missing_file(tmp_path):
    path = tmp_path / "nope-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- fuzz


def _check_reader(path: Path, payload: bytes, plain: bool):
    """The reader's whole contract on arbitrary input: an array or an IdxFormatError."""
    path.write_bytes(payload)
    try:
        out = read_idx(path)
    except IdxFormatError as e:
        message = str(e)
        assert str(path) in message and "\n" not in message
        return False
    assert isinstance(out, np.ndarray)
    if plain:  # an accepted plain file is exactly header + data
        assert len(payload) == 4 + 4 * out.ndim + out.nbytes
    return True


def _valid_payloads():
    rng = np.random.default_rng(7)
    return [
        idx_bytes(random_array(rng, np.uint8, (3, 4, 4))),
        idx_bytes(random_array(rng, np.int16, (5,))),
        idx_bytes(random_array(rng, np.float32, (2, 3))),
    ]


def test_fuzz_seeded(tmp_path):
    rng = np.random.default_rng(12345)
    valid = _valid_payloads()
    seeds = [(p, True) for p in valid] + [(gzip.compress(p), False) for p in valid]
    path = tmp_path / "fuzz"
    accepted = 0
    for case in range(3000):
        kind = case % 5
        if kind == 0:  # pure noise, sometimes dressed with an IDX or gzip prefix
            payload = rng.bytes(int(rng.integers(0, 64)))
            prefix = [b"", b"\x00\x00", bytes([0, 0, int(rng.choice(list(CODES.values()))), int(rng.integers(0, 4))]), b"\x1f\x8b\x08"][case % 4]
            payload, plain = prefix + payload, prefix[:1] != b"\x1f"
        else:
            base, plain = seeds[int(rng.integers(len(seeds)))]
            data = bytearray(base)
            if kind == 1:  # truncate
                data = data[: int(rng.integers(0, len(data)))]
            elif kind == 2:  # flip a few bytes
                for _ in range(int(rng.integers(1, 4))):
                    data[int(rng.integers(len(data)))] = int(rng.integers(256))
            elif kind == 3:  # append junk
                data += rng.bytes(int(rng.integers(1, 16)))
            else:  # delete or insert a slice
                i = int(rng.integers(len(data)))
                if rng.random() < 0.5:
                    del data[i : i + int(rng.integers(1, 8))]
                else:
                    data[i:i] = rng.bytes(int(rng.integers(1, 8)))
            payload = bytes(data)
        accepted += _check_reader(path, payload, plain and payload[:2] != b"\x1f\x8b")
    assert accepted < 3000  # the fuzzer really exercised the error paths


if hypothesis is not None:
    _SETTINGS = hypothesis.settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck)
    )

    @_SETTINGS
    @hypothesis.given(payload=st.binary(max_size=200))
    def test_fuzz_hypothesis_random_bytes(tmp_path_factory, payload):
        path = tmp_path_factory.getbasetemp() / "hyp_random"
        _check_reader(path, payload, payload[:2] != b"\x1f\x8b")

    @_SETTINGS
    @hypothesis.given(
        which=st.integers(0, 5),
        cut=st.integers(0, 10_000),
        edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
        tail=st.binary(max_size=8),
    )
    def test_fuzz_hypothesis_mutations(tmp_path_factory, which, cut, edits, tail):
        valid = _valid_payloads()
        base = valid[which % 3] if which < 3 else gzip.compress(valid[which % 3])
        data = bytearray(base)
        for pos, value in edits:
            data[pos % len(data)] = value
        data = data[: cut % (len(data) + 1)] + tail
        path = tmp_path_factory.getbasetemp() / "hyp_mutation"
        _check_reader(path, bytes(data), data[:2] != b"\x1f\x8b")

else:

    @pytest.mark.skip(reason="hypothesis not installed; test_fuzz_seeded covers fuzzing")
    def test_fuzz_hypothesis():
        pass


# --------------------------------------------------------------------------- finding and loading splits


def make_split(directory: Path, images_name: str, labels_name: str, n=6, n_labels=None, gz=None):
    rng = np.random.default_rng(3)
    images = random_array(rng, np.uint8, (n, 5, 4))
    labels = rng.integers(0, 10, size=n if n_labels is None else n_labels, dtype=np.uint8)
    for name, arr in ((images_name, images), (labels_name, labels)):
        write(directory / name, idx_bytes(arr), gz=name.endswith(".gz") if gz is None else gz)
    return images, labels


@pytest.mark.parametrize(
    "split, images_name, labels_name",
    [
        ("train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("train", "train-images.idx3-ubyte", "train-labels.idx1-ubyte"),
        ("test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        ("test", "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
        ("test", "test-images-idx3-ubyte.gz", "test-labels-idx1-ubyte.gz"),
        ("test", "test-images.idx3-ubyte.gz", "test-labels-idx1-ubyte"),
    ],
)
def test_find_and_load_split(tmp_path, split, images_name, labels_name):
    images, labels = make_split(tmp_path, images_name, labels_name)
    assert find_idx_split(tmp_path, split) == (tmp_path / images_name, tmp_path / labels_name)
    x, y = load_idx_split(str(tmp_path), split)
    assert x.dtype == np.uint8 and x.shape == (6, 5, 4)
    assert y.dtype == np.int32 and y.shape == (6,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_find_split_does_not_mix_splits(tmp_path):
    make_split(tmp_path, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError):
        find_idx_split(tmp_path, "test")


def test_find_split_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="'validation'.*train, test"):
        find_idx_split(tmp_path, "validation")


def test_find_split_missing_lists_search_and_contents(tmp_path):
    make_split(tmp_path, "train-images-idx3-ubyte.gz", "labels.bin")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError) as info:
        find_idx_split(tmp_path, "train")
    message = str(info.value)
    assert str(tmp_path) in message and "\n" not in message
    assert "train-labels-idx1-ubyte.gz" in message and "train-labels.idx1-ubyte" in message  # looked for
    assert "labels.bin" in message and "notes.txt" in message  # what is there


def test_find_split_empty_and_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory contains: \(nothing\)"):
        find_idx_split(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_idx_split(tmp_path / "absent", "train")


def test_load_split_count_mismatch(tmp_path):
    make_split(tmp_path, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", n=6, n_labels=5)
    with pytest.raises(IdxFormatError) as info:
        load_idx_split(tmp_path, "train")
    message = str(info.value)
    assert str(tmp_path / "train-images-idx3-ubyte") in message
    assert str(tmp_path / "train-labels-idx1-ubyte") in message
    assert "6 images" in message and "5 labels" in message


def test_load_split_wrong_image_rank_or_dtype(tmp_path):
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((6, 20), np.uint8)))
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(6, np.uint8)))
    with pytest.raises(IdxFormatError, match=r"images must be uint8 \(N, H, W\) or \(N, H, W, C\).*2-D uint8"):
        load_idx_split(tmp_path, "train")
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((6, 2, 2), np.float32)))
    with pytest.raises(IdxFormatError, match="images must be uint8.*3-D float32"):
        load_idx_split(tmp_path, "train")


def test_load_split_wrong_label_rank(tmp_path):
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((6, 2, 2), np.uint8)))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros((6, 1), np.uint8)))
    with pytest.raises(IdxFormatError, match="labels must be 1-D"):
        load_idx_split(tmp_path, "test")


def test_load_split_propagates_corrupt_file(tmp_path):
    make_split(tmp_path, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(IdxFormatError, match="corrupt gzip stream"):
        load_idx_split(tmp_path, "train")


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} not installed (Debian dataset-fashion-mnist)")
@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_debian_fashion_mnist(split, n):
    images_path, labels_path = find_idx_split(FASHION_DIR, split)
    assert images_path.name.endswith(("images-idx3-ubyte.gz", "images-idx3-ubyte"))
    x, y = load_idx_split(FASHION_DIR, split)
    assert x.shape == (n, 28, 28) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int32
    assert y.min() == 0 and y.max() == 9
    # Fashion-MNIST is class-balanced (Xiao, Rasul & Vollgraf, 2017).
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))
