"""A user's own pictures through the command line: train, resume, sample, evaluate and export on a
folder of colour images, and the one-line errors of folders a family cannot use.

(The folder reader itself is tested in tests/data/test_folder.py, every family at 32×32×3 in
tests/models/test_image_sizes.py and the colour autoregressive models in their own files.)
"""

import json

import numpy as np
import pytest
from PIL import Image

from child_processes import HANG_SECONDS
from tfgen.cli import main

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}


def make_folder(root, labelled=True, per_class=12, size=20):
    """RGBA PNGs (a coloured square on a transparent ground, its corner varying), one folder per colour."""
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        folder = root / name if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.zeros((size, size, 4), np.uint8)
            top, left = rng.integers(0, size // 2, 2)
            pixels[top:top + size // 2, left:left + size // 2] = (*rgb, 255)
            Image.fromarray(pixels, "RGBA").save(folder / f"{name}-{i}.png")
    return root


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("colours"), per_class=30)  # a test split of 9


def tfgen(*args):
    return main([str(a) for a in args])


def test_a_labelled_colour_folder_trains_resumes_samples_evaluates_and_exports(colour_folder, tmp_path, capsys):
    run = tmp_path / "run"
    common = ("--preset", "tiny", "--batch-size", "8", "--verbose", "0")
    assert tfgen("train", "cgan", "--dataset", f"folder:{colour_folder}", "--image-size", "16", "--epochs", "1",
                 "--out", run, *common) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data_options"] == {"image_size": [16, 16]}
    assert config["class_names"] == sorted(COLOURS) and config["config"]["image_shape"] == [16, 16, 3]
    grid = np.asarray(Image.open(run / "samples" / "epoch_001.png"))
    assert grid.ndim == 3 and grid.shape[2] >= 3  # a colour grid

    # --resume reads the folder the same way (16×16, RGB): its model and data must agree.
    assert tfgen("train", "--resume", run, "--epochs", "2", "--verbose", "0") == 0
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 2

    assert tfgen("sample", run, "--labels", "all", "--n", "6") == 0
    assert (run / "samples" / "sample.png").exists()

    # The evaluator of this dataset *as the run reads it* (16×16 RGB): eval must find it, not train another.
    from tfgen.eval import get_evaluator

    get_evaluator(f"folder:{colour_folder}", data_kwargs={"image_size": (16, 16)}, epochs=2, batch_size=16,
                  width=8, feature_dim=16, verbose=0)
    capsys.readouterr()
    assert tfgen("eval", run, "--n", "30", "--json", tmp_path / "eval.json") == 0
    out = capsys.readouterr().out
    assert "no cached evaluator" not in out, out
    scores = json.loads((tmp_path / "eval.json").read_text())
    assert np.isfinite(scores["fid"]) and 0.0 <= scores["conditional_accuracy"] <= 1.0

    assert tfgen("export", run) == 0
    import tensorflow as tf

    exported = tf.saved_model.load(str(run / "saved_model"))
    noise = tf.random.normal([2, int(exported.settings()["latent_dim"])])
    images = exported.sample(noise, tf.constant([0, 2]))
    assert images.shape == (2, 16, 16, 3) and 0.0 <= float(tf.reduce_min(images)) <= float(tf.reduce_max(images)) <= 1


def test_a_conditional_model_refuses_an_unlabelled_folder_in_one_line_and_writes_nothing(tmp_path, capsys):
    flat = make_folder(tmp_path / "flat", labelled=False, per_class=4)
    run = tmp_path / "run"
    assert tfgen("train", "cvae", "--preset", "tiny", "--dataset", f"folder:{flat}", "--image-size", "16",
                 "--batch-size", "4", "--out", run, "--verbose", "0") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "needs class labels" in err and "one subfolder per class" in err, err
    assert not run.exists()


def test_an_image_size_a_family_cannot_use_is_refused_before_the_data_is_read(tmp_path, capsys):
    # The folder does not exist: the size error comes first, naming the sizes the family can use.
    assert tfgen("train", "vae", "--dataset", f"folder:{tmp_path / 'none'}", "--image-size", "30",
                 "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "cannot use 30×30 images" in err and "e.g. 28, 32, 48, 64" in err, err


@pytest.mark.parametrize("args, message", [
    (("--image-size", "0"), "image_size must be a positive integer, got 0"),
    (("--image-size", "big"), "image size must be"),
    (("--channels", "2"), "invalid choice: 2"),
])
def test_bad_size_and_channel_flags_are_argument_errors(args, message, tmp_path, capsys):
    assert tfgen("train", "vae", "--dataset", f"folder:{tmp_path}", *args) == 2
    assert message in capsys.readouterr().err


def test_bad_folders_are_one_line_errors_with_status_2_and_skip_corrupt_counts_them(colour_folder, tmp_path, capsys):
    broken = make_folder(tmp_path / "broken", per_class=8)
    (broken / "red" / "garbage.png").write_bytes(b"not a png at all")
    base = ("train", "vae", "--preset", "tiny", "--image-size", "16", "--epochs", "1", "--batch-size", "8",
            "--verbose", "0")
    cases = {
        tmp_path / "missing": "does not exist",
        broken: "garbage.png",
    }
    (tmp_path / "empty").mkdir()
    cases[tmp_path / "empty"] = "empty"
    for folder, message in cases.items():
        assert tfgen(*base, "--dataset", f"folder:{folder}", "--out", tmp_path / "r") == 2, folder
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, (folder, err)
        assert not (tmp_path / "r").exists()
    with pytest.warns(Warning, match="1 .*skipped|skipped 1"):
        assert tfgen(*base, "--dataset", f"folder:{broken}", "--skip-corrupt", "--out", tmp_path / "r") == 0


def test_the_whole_loop_from_the_command_line_names_classes_and_prints_no_tensorflow_log_line(tmp_path, monkeypatch):
    """train → sample by class name → eval → export → resume from another directory, each command its own
    process (TensorFlow's C++ start-up lines come when a process imports it): what was read is summarised,
    real.png written, class names reach eval.json and the SavedModel, and no command prints a C++ log line."""
    import os
    import re
    import subprocess
    import sys

    from tfgen.eval import get_evaluator

    work = tmp_path / "work"
    make_folder(work / "pics", per_class=30)
    env = {**os.environ, "TFGEN_HOME": str(tmp_path / "home")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("TFGEN_TF_LOGS", None)
    monkeypatch.setenv("TFGEN_HOME", env["TFGEN_HOME"])
    # A small evaluator for this folder as the run reads it, cached where `tfgen eval` looks (training
    # the default one would take a minute; eval's own training is tested in tests/eval).
    get_evaluator(f"folder:{work / 'pics'}", data_kwargs={"image_size": (16, 16)}, epochs=2, batch_size=16,
                  width=8, feature_dim=16, verbose=0)

    def tfgen_process(*args, cwd):
        done = subprocess.run([sys.executable, "-m", "tfgen", *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=HANG_SECONDS)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert not re.findall(r"(?m)^[IWEF][0-9]{4} ", output), output
        return output

    out = tfgen_process("train", "cgan", "--preset", "tiny", "--dataset", "folder:pics", "--image-size", "16",
                        "--steps", "6", "--batch-size", "8", "--out", "run", cwd=work)
    assert "images: 81 read" not in out and "classes: 3: blue 30, green 30, red 30" in out, out
    run = work / "run"
    assert (run / "samples" / "real.png").exists()

    tfgen_process("sample", run, "--labels", "red,blue", "--n", "2", "--out", tmp_path / "named.png", cwd=tmp_path)
    assert (tmp_path / "named.png").exists()

    tfgen_process("eval", run, "--n", "30", cwd=tmp_path)
    scores = json.loads((run / "eval.json").read_text())
    assert scores["class_names"] == sorted(COLOURS)
    assert set(scores["conditional_accuracy_by_class"]) == set(COLOURS)

    tfgen_process("export", run, cwd=tmp_path)
    metadata = json.loads((run / "saved_model" / "metadata.json").read_text())
    assert json.dumps(sorted(COLOURS)) in json.dumps(metadata)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tfgen_process("train", "--resume", run, "--steps", "8", cwd=elsewhere)  # the folder path was stored absolute
    assert json.loads((run / "checkpoints" / "state.json").read_text())["step"] == 8
