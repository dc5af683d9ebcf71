"""Every bad input gets a clear error: one line, naming the bad value and what was expected.

One table per boundary, each row (call, error type, message):

* `tfgen.data` — `load`, `load_arrays`, `idx:DIR` directories;
* models — `tfgen.get_model` constructors, `sample`, calls on images;
* `model.fit` — batches of the wrong shape, type or range, bad labels (the first batch is
  checked eagerly when `fit` starts; later ones inside the compiled step: `InvalidArgumentError`
  carrying the message);
* the command line — `main([...])` returns 2 and prints one line, no traceback.
"""

import json
import re
import struct

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from tfgen import data
from tfgen.cli import main
from tfgen.data.idx import IdxFormatError
from tfgen.registry import UnknownNameError
from tfgen.runs import RunDirectoryError, run_lock


def idx_file(path, array, code=0x08):
    """Write `array` as a plain IDX file (magic, big-endian sizes, big-endian data)."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.asarray(array).astype(dtype).tobytes())


def idx_dir(root, name, n=40, n_labels=None, images=None, code=0x08):
    """A directory of the four IDX files of a small dataset (train and t10k: the same images)."""
    directory = root / name
    directory.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28)) if images is None else images
    labels = rng.integers(0, 10, n if n_labels is None else n_labels)
    for split in ("train", "t10k"):
        idx_file(directory / f"{split}-images-idx3-ubyte", images, code)
        idx_file(directory / f"{split}-labels-idx1-ubyte", labels)
    return directory


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Named bad (and one good) inputs on disk: IDX directories and run directories."""
    root = tmp_path_factory.mktemp("bad_input")
    out = {"good": idx_dir(root, "good"), "empty": idx_dir(root, "empty", n=0, images=np.zeros((0, 28, 28)))}
    out["count_mismatch"] = idx_dir(root, "count_mismatch", n_labels=39)
    nan_images = np.full((40, 28, 28), 0.5, np.float32)
    nan_images[3, 4, 5] = np.nan
    out["float_nan"] = idx_dir(root, "float_nan", images=nan_images, code=0x0D)
    out["truncated"] = idx_dir(root, "truncated")
    path = out["truncated"] / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    out["bad_magic"] = idx_dir(root, "bad_magic")
    path = out["bad_magic"] / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x08\x03" + path.read_bytes()[2:])
    out["no_labels"] = idx_dir(root, "no_labels")
    (out["no_labels"] / "train-labels-idx1-ubyte").unlink()

    # A run directory of a GAN (config.json only: refused before anything is loaded).
    out["gan_run"] = root / "gan_run"
    out["gan_run"].mkdir()
    (out["gan_run"] / "config.json").write_text(json.dumps({"model": "gan"}))
    # A run whose config.json says VAE but whose checkpoint holds a GAN.
    mixed = out["mixed_run"] = root / "mixed_run"
    (mixed / "checkpoints").mkdir(parents=True)
    (mixed / "config.json").write_text(json.dumps({
        "model": "vae", "preset": "tiny", "dataset": "mnist_bundled", "epochs": 2, "batch_size": 32, "seed": 0,
        "limit": 64}))
    (mixed / "checkpoints" / "state.json").write_text(json.dumps({"epoch": 1}))
    tfgen.get_model("gan", "tiny", seed=0).save(mixed / "checkpoints" / "last.keras")
    # A run directory holding a (class-conditional) diffusion model, for `tfgen sample`.
    out["diffusion_run"] = root / "diffusion_run"
    out["diffusion_run"].mkdir()
    tfgen.get_model("diffusion", "tiny", seed=0).save(out["diffusion_run"] / "model.keras")
    out["not_a_run"] = root / "not_a_run"
    out["not_a_run"].mkdir()
    out["corrupt_run"] = root / "corrupt_run"
    out["corrupt_run"].mkdir()
    (out["corrupt_run"] / "config.json").write_text('{"mod')
    return out


# ------------------------------------------------------------------------------------------ tfgen.data
DATA_CASES = {
    "image size for the model": (dict(image_shape=(32, 32, 1)), ValueError,
                                 r"shape \(28, 28, 1\), but the model expects \(32, 32, 1\)"),
    "channels for the model": (dict(image_shape=(28, 28, 3)), ValueError, r"but the model expects \(28, 28, 3\)"),
    "rank for the model": (dict(image_shape=(28, 28)), ValueError, r"but the model expects \(28, 28\)"),
    "labels beyond num_classes": (dict(num_classes=5), ValueError, "labels up to 9, but the model has num_classes=5"),
    "unknown split": (dict(split="validation"), ValueError, "unknown split 'validation'; choose from train, test"),
    "batch_size 0": (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    "batch_size negative": (dict(batch_size=-8), ValueError, "batch_size must be a positive integer, got -8"),
    "batch_size float": (dict(batch_size=2.5), ValueError, "batch_size must be a positive integer, got 2.5"),
    "limit 0": (dict(limit=0), ValueError, "limit must be a positive integer, got 0"),
    "unknown dataset": (dict(name="not_a_dataset"), UnknownNameError, "unknown dataset 'not_a_dataset'"),
    "empty split": (dict(name="idx:{empty}"), ValueError, "split 'train' is empty"),
    "IDX truncated": (dict(name="idx:{truncated}"), IdxFormatError, "train-images-idx3-ubyte: file is truncated"),
    "IDX wrong magic": (dict(name="idx:{bad_magic}"), IdxFormatError, "bad magic number 0x08030801"),
    "IDX counts differ": (dict(name="idx:{count_mismatch}"), IdxFormatError, "40 images vs 39 labels"),
    # Float IDX images (here with a NaN pixel) are refused at load time: pixels are uint8, scaled by 1/255.
    "IDX float images, NaN": (dict(name="idx:{float_nan}"), IdxFormatError, "images must be uint8.*float32"),
    "IDX file missing": (dict(name="idx:{no_labels}"), FileNotFoundError, "no train labels file found"),
    "IDX directory missing": (dict(name="idx:/nonexistent/idx"), FileNotFoundError, "directory does not exist"),
}


@pytest.mark.parametrize("case, loader", [(case, loader) for case in DATA_CASES for loader in ("load", "load_arrays")
                                          if loader == "load" or "batch_size" not in DATA_CASES[case][0]])
def test_data_errors(case, loader, dirs):
    kwargs, error, message = DATA_CASES[case]
    kwargs = {"name": "mnist_bundled", **kwargs}
    kwargs["name"] = kwargs["name"].format(**dirs)
    with pytest.raises(error, match=message) as info:
        getattr(data, loader)(**kwargs)
    assert "\n" not in str(info.value)


def test_good_idx_directory_loads_as_float_in_0_1(dirs):
    images, labels = data.load_arrays(f"idx:{dirs['good']}", "test")
    assert images.dtype == np.float32 and images.shape == (40, 28, 28, 1) and labels.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9


# ------------------------------------------------------------------------------------------ models
def _model(name, **kw):
    return lambda: tfgen.get_model(name, "tiny", seed=0, **kw)


def _method(name, method, *args, **kw):
    return lambda: getattr(tfgen.get_model(name, "tiny", seed=0), method)(*args, **kw)


IMAGES = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)

MODEL_CASES = {
    "unknown model": (lambda: tfgen.get_model("nope"), UnknownNameError, "unknown model 'nope'; choose from"),
    "unknown preset": (lambda: tfgen.get_model("vae", "huge"), UnknownNameError, "unknown preset 'huge' for 'vae'"),
    "unknown hyperparameter": (_model("vae", latnt_dim=3), UnknownNameError, "unknown hyperparameter 'latnt_dim'"),
    "latent_dim 0": (_model("vae", latent_dim=0), ValueError, "latent_dim must be a positive integer, got 0"),
    "latent_dim negative": (_model("gan", latent_dim=-4), ValueError, "latent_dim must be a positive integer, got -4"),
    "latent_dim float": (_model("vae", latent_dim=2.5), ValueError, "latent_dim must be a positive integer, got 2.5"),
    "latent_dim string": (_model("vae", latent_dim="8"), ValueError, "latent_dim must be a positive integer, got '8'"),
    "width 0": (_model("gan", width=0), ValueError, "width must be a positive integer, got 0"),
    "num_classes 0": (_model("cgan", num_classes=0), ValueError, "num_classes must be a positive integer, got 0"),
    "learning_rate 0": (_model("vae", learning_rate=0.0), ValueError, "learning_rate must be a positive number"),
    "image_shape rank": (_model("vae", image_shape=(28, 28)), ValueError, r"image_shape must be \(height, width, "),
    "filters for colour PixelCNN": (_model("pixelcnn", image_shape=(28, 28, 3), filters=2), ValueError,
                                    "filters for 3-channel images must be an integer >= 3, got 2"),
    "unknown schedule": (_model("diffusion", schedule="nope"), UnknownNameError, "unknown noise schedule 'nope'"),
    "unknown prediction": (_model("diffusion", prediction="x0"), UnknownNameError, "unknown prediction 'x0'"),
    "timesteps 1": (_model("diffusion", timesteps=1), ValueError, "timesteps must be an integer >= 2, got 1"),
    "sample n 0": (_method("vae", "sample", 0), ValueError, "n must be a positive integer, got 0"),
    "sample n negative": (_method("gan", "sample", -1), ValueError, "n must be a positive integer, got -1"),
    "sample n float": (_method("pixelcnn", "sample", 2.5), ValueError, "n must be a positive integer, got 2.5"),
    "sampling steps 0": (_method("diffusion", "sample", 2, steps=0), ValueError, r"steps must be an integer in \[1, "),
    "unknown sampler": (_method("diffusion", "sample", 2, sampler="euler"), UnknownNameError, "unknown sampler"),
    "labels out of range": (_method("cgan", "sample", 2, labels=[10, 1]), ValueError,
                            r"labels must be in \[0, 10\) \(num_classes=10\), got \[10\]"),
    "labels negative": (_method("cvae", "sample", 2, labels=[-1, 1]), ValueError, r"got \[-1\]"),
    "labels not integers": (_method("cgan", "sample", 2, labels=[1.5, 2]), ValueError, "integer class indices"),
    "labels one-hot": (_method("cvae", "sample", 2, labels=np.eye(10)[:2]), ValueError, "one-hot labels"),
    "labels count": (_method("cgan", "sample", 3, labels=[1, 2]), ValueError, "has 2 entries but 3 samples"),
    "labels for an unconditional diffusion": (
        lambda: tfgen.get_model("diffusion", "tiny", class_conditional=False).sample(2, labels=[1, 2], steps=2),
        ValueError, "class_conditional=False"),
    "uint8 images": (_method("vae", "__call__", (IMAGES * 255).astype(np.uint8)), ValueError,
                     "expects float images in \\[0, 1\\], got uint8 images: divide 0-255 pixels by 255"),
    "0-255 float images": (_method("vae", "__call__", IMAGES * 255), ValueError,
                           r"expects pixels in \[0, 1\], got values in \[\d.*, 2\d\d.*\], 0 NaN and 0 infinite"),
    "[-1, 1] images": (_method("pixelcnn", "log_prob", IMAGES * 2 - 1), ValueError,
                       r"PixelCNN expects pixels in \[0, 1\], got values in \[-0.9\d*, 0.9\d*\]"),
    "NaN pixel": (_method("pixel_transformer", "log_prob", np.where(IMAGES > 0.99, np.nan, IMAGES)), ValueError,
                  r"in \[0, 1\], got values in .*, [1-9]\d* NaN and 0 infinite pixels"),
    "Inf pixel": (_method("gan", "__call__", np.where(IMAGES > 0.99, np.inf, IMAGES)), ValueError,
                  r"0 NaN and [1-9]\d* infinite pixels"),
    "image size": (_method("vae", "__call__", np.zeros((2, 32, 32, 1), np.float32)), ValueError,
                   r"VAE expects images of shape \(28, 28, 1\), got \(32, 32, 1\)"),
    "labels missing": (_method("cvae", "transfer_style", IMAGES, None), ValueError, "labels are required"),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_errors(case):
    call, error, message = MODEL_CASES[case]
    with pytest.raises(error, match=message) as info:
        call()
    text = str(info.value)
    if "Arguments received by" in text:  # `model(x)`: Keras wraps the message in lines of its own
        assert any(re.search(message, line) for line in text.splitlines()), text
    else:
        assert "\n" not in text


# ------------------------------------------------------------------------------------------ model.fit
def _batches(images, labels=None):
    images = np.asarray(images)
    items = images if labels is None else (images, np.asarray(labels))
    return tf.data.Dataset.from_tensor_slices(items).batch(4)


GOOD = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
LABELS = np.arange(8, dtype=np.int32)
InvalidArgument = tf.errors.InvalidArgumentError

FIT_CASES = {
    # Caught when `fit` starts, by an eager check of the first batch, before any training.
    "image size": ("vae", _batches(np.zeros((8, 32, 32, 1), np.float32)), ValueError,
                   r"expects images of shape \(28, 28, 1\), got \(32, 32, 1\)"),
    "image channels": ("gan", _batches(np.zeros((8, 28, 28, 3), np.float32)), ValueError,
                       r"expects images of shape \(28, 28, 1\), got \(28, 28, 3\)"),
    "image rank": ("vae", _batches(np.zeros((8, 28, 28), np.float32)), ValueError,
                   r"batch of images of shape \(batch, 28, 28, 1\), got a tensor of rank 3"),
    "uint8 images": ("vae", _batches((GOOD * 255).astype(np.uint8)), ValueError, "got uint8 images: divide"),
    "labels missing, conditional model": ("cvae", _batches(GOOD), ValueError,
                                          "CVAE requires labels: batches must be \\(images, labels\\)"),
    "string labels": ("cgan", _batches(GOOD, LABELS.astype(str)), ValueError,
                      "labels must be integer class indices, got"),
    "NaN pixel": ("vae", _batches(np.where(GOOD > 0.9, np.nan, GOOD)), ValueError,
                  r"VAE expects pixels in \[0, 1\], got values in .*, \d+ NaN"),
    "Inf pixel": ("vae", _batches(np.where(GOOD > 0.9, np.inf, GOOD)), ValueError, r"\d+ infinite pixels"),
    "0-255 floats": ("vae", _batches(GOOD * 255), ValueError,
                     r"VAE expects pixels in \[0, 1\], .*0-255 pixels .*divide by 255"),
    "[-1, 1] floats": ("gan", _batches(GOOD * 2 - 1), ValueError, r"\[-1, 1\] pixels: rescale with \(x \+ 1\) / 2"),
    "labels negative": ("cvae", _batches(GOOD, LABELS - 3), ValueError, r"labels must be in \[0, 10\)"),
    "labels not integers": ("cvae", _batches(GOOD, LABELS + 0.5), ValueError, "labels must be integer class indices"),
    # Caught by checks inside the compiled step, at the first bad batch after a good first one.
    "0-255 floats in a later batch": ("vae", _batches(np.concatenate([GOOD[:4], GOOD[4:] * 255])), InvalidArgument,
                                      r"VAE expects pixels in \[0, 1\]"),
    "labels out of range": ("cvae", _batches(GOOD, LABELS + 5), InvalidArgument, "labels must be < num_classes=10"),
}


@pytest.fixture(scope="module")
def compiled():
    """One compiled tiny model per family, shared by the cases (a step is traced once per input signature)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = tfgen.get_model(name, "tiny", seed=0)
            cache[name].default_compile()
        return cache[name]

    return get


@pytest.mark.parametrize("case", FIT_CASES)
def test_fit_errors(case, compiled):
    name, batches, error, message = FIT_CASES[case]
    model = compiled(name)
    with pytest.raises(error, match=message) as info:
        model.fit(batches, verbose=0)
    if error is ValueError:
        assert "\n" not in str(info.value)


def test_fit_accepts_good_batches_after_refusing_bad_ones(compiled):
    """The checks cost nothing in correctness: the same compiled models still train on [0, 1] floats."""
    for name in ("vae", "cvae", "gan"):
        history = compiled(name).fit(_batches(GOOD, LABELS), verbose=0).history
        assert all(np.isfinite(v[-1]) for v in history.values()), (name, history)


# ------------------------------------------------------------------------------------------ command line
TRAIN = ["train", "vae", "--preset", "tiny", "--epochs", "1", "--limit", "64", "--verbose", "0"]

CLI_CASES = {
    "unknown model": (["train", "nope"], "unknown model 'nope'"),
    "unknown preset": (["train", "vae", "--preset", "huge"], "unknown preset 'huge'"),
    "unknown dataset": (TRAIN + ["--dataset", "not_a_dataset"], "unknown dataset 'not_a_dataset'"),
    "unknown strategy": (TRAIN + ["--strategy", "tpu"], "unknown strategy 'tpu'"),
    "unknown schedule": (["train", "diffusion", "--set", "schedule=nope", "--limit", "64"],
                         "unknown noise schedule 'nope'"),
    "unknown --set key": (["train", "vae", "--set", "latnt_dim=3"], "vae has no hyperparameter 'latnt_dim'"),
    "--set without =": (["train", "vae", "--set", "latent_dim"], "--set expects KEY=VALUE, got 'latent_dim'"),
    "--set int as word": (["train", "vae", "--set", "latent_dim=big"], "latent_dim=big: expected int like"),
    "--set int as float": (["train", "vae", "--set", "latent_dim=2.5"], "latent_dim=2.5: expected int"),
    "--set float as word": (["train", "vae", "--set", "beta=high"], "beta=high: expected float"),
    "--set bool as int": (["train", "diffusion", "--set", "attention=1"], "attention=1: expected bool"),
    "--set tuple as int": (["train", "diffusion", "--set", "channel_mults=2"], "channel_mults=2: expected tuple"),
    "--set str as int": (["train", "diffusion", "--set", "schedule=3"], "schedule=3: expected str"),
    "latent dim 0": (TRAIN + ["--set", "latent_dim=0"], "latent_dim must be a positive integer, got 0"),
    "image size for the model": (TRAIN + ["--set", "image_shape=(32, 32, 1)"],
                                 r"has images of shape (28, 28, 1), but the model expects (32, 32, 1)"),
    "labels beyond num_classes": (TRAIN + ["--set", "num_classes=5"], "labels up to 9, but the model has num_classes=5"),
    "epochs 0": (TRAIN + ["--epochs", "0"], "epochs must be a positive integer, got 0"),
    "epochs not a number": (["train", "vae", "--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    "batch size negative": (TRAIN + ["--batch-size", "-2"], "batch_size must be a positive integer, got -2"),
    "batch size above the data": (TRAIN + ["--batch-size", "1000"], "batch_size 1000 is larger than the 64 training"),
    "limit 0": (TRAIN + ["--limit", "0"], "limit must be a positive integer, got 0"),
    "seed negative": (TRAIN + ["--seed", "-1"], "seed must be an integer >= 0, got -1"),
    "verbose unknown": (["train", "vae", "--verbose", "loud"], "argument --verbose: invalid choice: 'loud'"),
    "empty dataset": (TRAIN + ["--dataset", "idx:{empty}"], "split 'train' is empty"),
    "IDX truncated": (TRAIN + ["--dataset", "idx:{truncated}"], "file is truncated: header promises 31360 bytes"),
    "IDX wrong magic": (TRAIN + ["--dataset", "idx:{bad_magic}"], "bad magic number"),
    "IDX counts differ": (TRAIN + ["--dataset", "idx:{count_mismatch}"], "40 images vs 39 labels"),
    "IDX directory missing": (TRAIN + ["--dataset", "idx:/nonexistent/idx"], "directory does not exist"),
    "run of another model": (TRAIN + ["--out", "{gan_run}"], "already holds a run (of 'gan')"),
    "run files of two models": (["train", "--resume", "{mixed_run}"], "holds a 'gan' model, but"),
    "resume: no run": (["train", "--resume", "/nonexistent/run"], "not a tfgen run directory"),
    "resume: not a run": (["train", "--resume", "{not_a_run}"], "not a tfgen run directory"),
    "resume: corrupt config.json": (["train", "--resume", "{corrupt_run}"], "config.json is corrupt"),
    "sample: no run": (["sample", "/nonexistent/run", "--out", "x.png"], "run directory /nonexistent/run does not exist"),
    "sample: not a run": (["sample", "{not_a_run}", "--out", "x.png"], "not a tfgen run"),
    "sample n 0": (["sample", "{diffusion_run}", "--n", "0", "--out", "x.png"], "--n must be a positive integer"),
    "sample steps 0": (["sample", "{diffusion_run}", "--steps", "0", "--out", "x.png"], "--steps must be a positive"),
    "sample temperature for diffusion": (["sample", "{diffusion_run}", "--temperature", "0.8", "--out", "x.png"],
                                         "--temperature: Diffusion has no such sampling option"),
    "sample unknown sampler": (["sample", "{diffusion_run}", "--sampler", "heun", "--out", "x.png"],
                               "unknown sampler 'heun'"),
    "sample labels out of range": (["sample", "{diffusion_run}", "--labels", "3,12", "--out", "x.png"],
                                   r"--labels [12] outside [0, 10)"),
    "sample labels neither indices nor names": (["sample", "{diffusion_run}", "--labels", "3,b", "--out", "x.png"],
                                                "--labels must be comma-separated class indices or 'all' (this run "
                                                "records no class names), got 'b'"),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_errors_are_one_line_with_status_2(case, dirs, capsys, tmp_path, monkeypatch):
    argv, message = CLI_CASES[case]
    monkeypatch.chdir(tmp_path)  # nothing a case might write lands in the source tree
    assert main([arg.format(**{k: str(v) for k, v in dirs.items()}) for arg in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("tfgen") and ": error: " in err and "\n" not in err, err
    assert message.format(**dirs) in err, err
    assert "Traceback" not in captured.out + captured.err


def test_a_run_being_written_by_another_process_is_refused(dirs, capsys):
    """The lock is per open file: another holder in this process stands for another process here
    (tests/test_faults.py checks a real `tfgen train` process)."""
    run = dirs["mixed_run"]
    with run_lock(run):
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("tfgen: error:") and "\n" not in err
        assert "is being written by another running tfgen process" in err
        with pytest.raises(RunDirectoryError, match="being written"):
            tfgen.training.resume(run)
    assert not (run / ".lock").exists()  # removed by its holder, and no obstacle once released:
    with run_lock(run):
        pass
