"""Reader for the IDX file format of MNIST, Fashion-MNIST and KMNIST.

The format is defined on the MNIST database page (Y. LeCun, C. Cortes,
C. J. C. Burges, http://yann.lecun.com/exdb/mnist/):

* a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, with dtype codes
  0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64;
* ``ndim`` dimension sizes, each a big-endian uint32;
* the data, big-endian, C (row-major) order, and nothing after it.

Files are often distributed gzipped; `read_idx` recognises gzip by its magic
bytes, so a misnamed file still reads. Every problem with a file's *contents*
raises `IdxFormatError`, with a one-line message naming the file, what was
wrong and what was expected.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from tfgen.checks import one_of

__all__ = ["IdxFormatError", "read_idx", "find_idx_split", "load_idx_split", "IDX_DTYPES"]

# dtype code (third magic byte) -> (name, big-endian numpy dtype), per the MNIST page.
IDX_DTYPES: dict[int, tuple[str, str]] = {
    0x08: ("uint8", ">u1"),
    0x09: ("int8", ">i1"),
    0x0B: ("int16", ">i2"),
    0x0C: ("int32", ">i4"),
    0x0D: ("float32", ">f4"),
    0x0E: ("float64", ">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
# Read in bounded chunks so a corrupt header promising petabytes cannot make us
# allocate more memory than the file really holds.
_CHUNK = 1 << 20

SPLITS = ("train", "test")
#: A dataset name `idx:DIR` reads the IDX files in DIR.
PREFIX = "idx:"
# Standard file-name prefixes per split; "test-" appears in some re-distributions
# in place of the original "t10k-".
_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
# kind -> the IDX ranks in the conventional file names ("idx3" grey images, "idx4" colour ones, "idx1" labels).
_KIND_RANK = {"images": (3, 4), "labels": (1,)}


class IdxFormatError(ValueError):
    """A file is not a valid IDX file (bad magic, truncated, trailing data, corrupt gzip...)."""


def _describe_codes() -> str:
    return ", ".join(f"0x{code:02X} ({name})" for code, (name, _) in IDX_DTYPES.items())


def _read_up_to(f, n: int) -> bytearray:
    """Read at most `n` bytes, stopping early only at end of file."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _count_rest(f) -> int:
    """Number of bytes left in `f` (read and discarded chunk by chunk)."""
    total = 0
    while chunk := f.read(_CHUNK):
        total += len(chunk)
    return total


def _parse(f, where: str) -> np.ndarray:
    magic = _read_up_to(f, 4)
    if len(magic) == 0:
        raise IdxFormatError(f"{where}: file is empty: expected an IDX file (4-byte magic number, then header and data)")
    if len(magic) < 4:
        raise IdxFormatError(f"{where}: file is truncated: the IDX magic number needs 4 bytes, found {len(magic)}")
    if magic[0] != 0 or magic[1] != 0:
        raise IdxFormatError(
            f"{where}: bad magic number 0x{bytes(magic).hex().upper()}: "
            "expected the first two bytes to be 0x00 0x00 (not an IDX file?)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise IdxFormatError(
            f"{where}: unknown data type code 0x{code:02X} in magic number: expected one of {_describe_codes()}"
        )
    if ndim == 0:
        raise IdxFormatError(f"{where}: magic number declares 0 dimensions: expected at least 1")

    dims_raw = _read_up_to(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IdxFormatError(
            f"{where}: file is truncated: header with {ndim} dimension(s) needs {4 + 4 * ndim} bytes, "
            f"found {4 + len(dims_raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(bytes(dims_raw), dtype=">u4"))
    name, be_dtype = IDX_DTYPES[code]
    # Python ints: a corrupt header's product can overflow int64.
    expected = math.prod(shape) * np.dtype(be_dtype).itemsize

    # Ask for one byte more than promised so trailing data is detected without
    # trusting the header enough to allocate its claimed size up front.
    data = _read_up_to(f, expected + 1)
    if len(data) < expected:
        raise IdxFormatError(
            f"{where}: file is truncated: header promises {expected} bytes of data "
            f"({name}, shape {shape}), found {len(data)}"
        )
    if len(data) > expected:
        extra = len(data) - expected + _count_rest(f)
        raise IdxFormatError(
            f"{where}: {extra} unexpected trailing byte(s) after the data: header promises exactly "
            f"{expected} bytes of data ({name}, shape {shape})"
        )

    arr = np.frombuffer(data, dtype=be_dtype).reshape(shape)
    # Callers get native byte order; a bytearray-backed uint8 array is already
    # writable, so only multi-byte types pay for a copy.
    native = np.dtype(be_dtype).newbyteorder("=")
    return arr if arr.dtype == native else arr.astype(native)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a native-byte-order numpy array.

    Format: LeCun, Cortes & Burges, "The MNIST database of handwritten digits",
    http://yann.lecun.com/exdb/mnist/ (section "File formats").

    Raises `IdxFormatError` for any problem with the contents (bad magic number,
    unknown dtype code, zero dimensions, truncated header or data, trailing
    bytes, corrupt gzip stream) and `FileNotFoundError` if `path` is missing.
    """
    where = os.fspath(path)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not is_gzip:
            return _parse(raw, where)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return _parse(f, where)
        # BadGzipFile is an OSError, but only it is caught: a real I/O error
        # (disk, permissions) must not be reported as bad contents.
        except (gzip.BadGzipFile, zlib.error, EOFError) as e:
            raise IdxFormatError(
                f"{where}: corrupt gzip stream ({type(e).__name__}: {e}): expected a valid gzip-compressed IDX file"
            ) from e


def _candidate_names(split: str, kind: str) -> list[str]:
    names = []
    for rank in _KIND_RANK[kind]:
        for prefix in _SPLIT_PREFIXES[split]:
            # "-idxN-ubyte" is the original spelling; ".idxN-ubyte" is common in re-uploads.
            for sep in ("-", "."):
                base = f"{prefix}-{kind}{sep}idx{rank}-ubyte"
                names += [base + ".gz", base]
    return names


def find_idx_split(directory: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Locate the standard MNIST-style IDX files of `split` ("train" or "test") in `directory`.

    Accepts the names of the MNIST page (``train-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, ...; ``idx4`` for colour images), gzipped or not, the ``.idx3-ubyte`` spelling
    and a ``test-`` prefix in place of ``t10k-``. Returns ``(images_path, labels_path)``.
    """
    one_of(split, SPLITS, "split")
    directory = Path(directory)
    if not directory.is_dir():
        if directory.exists():
            raise NotADirectoryError(f"{directory}: not a directory: expected a directory of IDX files")
        raise FileNotFoundError(f"{directory}: directory does not exist: expected a directory of IDX files")

    found = []
    for kind in ("images", "labels"):
        candidates = _candidate_names(split, kind)
        path = next((directory / n for n in candidates if (directory / n).is_file()), None)
        if path is None:
            contents = sorted(p.name for p in directory.iterdir())
            shown = ", ".join(contents[:30]) + (f", ... ({len(contents)} entries)" if len(contents) > 30 else "")
            raise FileNotFoundError(
                f"{directory}: no {split} {kind} file found; looked for {', '.join(candidates)}; "
                f"directory contains: {shown or '(nothing)'}"
            )
        found.append(path)
    return found[0], found[1]


def load_idx_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-style dataset: ``(images uint8 (N, H, W[, C]), labels int32 (N,))``.

    Images may be 4-D (N, H, W, C) with C = 1 or 3 channels (colour), as
    the IDX format allows any number of dimensions.

    Files are found by `find_idx_split` and read by `read_idx` (format of the
    MNIST database page, LeCun et al.).
    """
    images_path, labels_path = find_idx_split(directory, split)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    colour_ok = images.ndim == 4 and images.shape[-1] in (1, 3)
    if images.dtype != np.uint8 or not (images.ndim == 3 or colour_ok):
        raise IdxFormatError(
            f"{images_path}: images must be uint8 (N, H, W) or (N, H, W, C) with C = 1 or 3, found "
            f"{images.ndim}-D {images.dtype} with shape {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise IdxFormatError(
            f"{labels_path}: labels must be 1-D integers (N,), found {labels.ndim}-D {labels.dtype} "
            f"with shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} and {labels_path}: image and label counts differ: "
            f"{len(images)} images vs {len(labels)} labels"
        )
    # Every IDX integer type (at most int32) fits in int32 losslessly.
    return images, labels.astype(np.int32)
