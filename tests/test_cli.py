"""The `tfgen` command line: the contract in the README, and one-line errors with status 2."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from child_processes import HANG_SECONDS
from tfgen.cli import main


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    code = main(["train", "vae", "--preset", "tiny", "--epochs", "2", "--batch-size", "32", "--limit", "256",
                 "--out", str(out), "--set", "latent_dim=3", "--verbose", "0"])
    assert code == 0
    return out


def test_list_shows_models_with_presets(capsys):
    assert main(["list"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert "conv_pool" in lines["vae"] and "tiny" in lines["gan"] and "document" not in lines["vae"]


def test_train_writes_the_run_directory(vae_run):
    config = json.loads((vae_run / "config.json").read_text())
    assert config["model"] == "vae" and config["preset"] == "tiny" and config["config"]["latent_dim"] == 3
    rows = list(csv.DictReader(open(vae_run / "history.csv")))
    assert len(rows) == 2
    assert {"loss", "kl_loss", "reconstruction_loss", "val_loss", "images_per_second"} <= set(rows[0])
    assert sorted(p.name for p in (vae_run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png", "real.png"]
    assert (vae_run / "checkpoints" / "last.keras").exists()
    assert json.loads((vae_run / "checkpoints" / "state.json").read_text())["epoch"] == 2
    assert (vae_run / "model.keras").exists()
    assert any((vae_run / "logs").rglob("events.out.tfevents*"))


def test_sample_writes_a_png(vae_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(vae_run), "--n", "16", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == f"wrote 16 samples to {out}"


def test_sample_without_out_writes_next_to_the_run_and_jpg_is_a_jpeg(vae_run, tmp_path, capsys):
    assert main(["sample", str(vae_run), "--n", "4"]) == 0
    default = vae_run / "samples" / "sample.png"
    assert default.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(default) in capsys.readouterr().out
    assert main(["sample", str(vae_run), "--n", "4", "--out", str(tmp_path / "grid.jpg")]) == 0
    assert (tmp_path / "grid.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert main(["sample", str(vae_run), "--out", str(tmp_path / "grid.gif")]) == 2
    assert "use a file name ending in .png, .jpg, .jpeg" in capsys.readouterr().err


def test_history_counts_epochs_from_1_like_the_sample_grids(vae_run):
    assert [row["epoch"] for row in csv.DictReader(open(vae_run / "history.csv"))] == ["1", "2"]


def test_the_sample_grid_is_also_a_tensorboard_image_for_each_epoch(vae_run):
    import tensorflow as tf

    images = {}
    for path in sorted((vae_run / "logs" / "samples").glob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag in ("samples", "real"):
                    images[value.tag, event.step] = tf.io.decode_png(tf.make_ndarray(value.tensor)[2]).numpy()
    # steps are epochs, counted from 1 like epoch_001.png; the real images before the first
    assert sorted(images) == [("real", 0), ("samples", 1), ("samples", 2)]
    from PIL import Image

    for key, png in ((("samples", 2), "epoch_002.png"), (("real", 0), "real.png")):
        np.testing.assert_array_equal(images[key][..., 0], np.asarray(Image.open(vae_run / "samples" / png)))


def test_sample_labels_all_draws_one_row_per_class_from_a_model_with_optional_labels(tmp_path, capsys):
    import tfgen

    for class_conditional in (True, False):
        run = tmp_path / f"diffusion-{class_conditional}"
        run.mkdir()
        tfgen.get_model("diffusion", "tiny", seed=0, class_conditional=class_conditional).save(run / "model.keras")
        args = ["sample", str(run), "--n", "25", "--labels", "all", "--steps", "2", "--out", str(tmp_path / "g.png")]
        if class_conditional:
            assert main(args) == 0
            # 2 per class, one row each, and the line says why 20, not 25:
            assert capsys.readouterr().out.strip() == (f"wrote 20 samples to {tmp_path / 'g.png'} (a block per class: "
                                                       "--n 25 gives 2 images for each of 10 classes)")
        else:
            assert main(args) == 2
            assert "--labels needs a model that takes labels" in capsys.readouterr().err


def test_labels_are_class_names_indices_or_all_and_an_unknown_name_is_one_line_naming_the_nearest():
    from tfgen.cli import parse_labels

    names = ["activities", "flags", "smileys_and_emotion"]
    assert parse_labels("flags,smileys_and_emotion", 3, names) == [1, 2]
    assert parse_labels("flags, 0,flags", 3, names) == [1, 0, 1]  # names and indices mix
    assert parse_labels("2,0", 3) == [2, 0]  # a run without names (digits): indices
    with pytest.raises(ValueError) as err:
        parse_labels("flags,smilies", 3, names)
    assert str(err.value) == ("--labels: no class 'smilies' (nearest: 'smileys_and_emotion'); the run's classes: "
                              "activities, flags, smileys_and_emotion")
    with pytest.raises(ValueError, match="this run records no class names"):
        parse_labels("flags", 3)
    with pytest.raises(ValueError, match=r"--labels \[3\] outside \[0, 3\)"):
        parse_labels("3", 3, names)


def test_sample_draws_the_named_classes_of_a_folder_run(tmp_path, capsys):
    import tfgen

    run, names = tmp_path / "run", ["flags", "food", "smileys_and_emotion"]
    run.mkdir()
    tfgen.get_model("cgan", "tiny", num_classes=3, seed=0).save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": "cgan", "preset": "tiny", "class_names": names}))
    out = tmp_path / "g.png"
    assert main(["sample", str(run), "--labels", "flags,smileys_and_emotion,flags", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 3 samples to {out}"
    assert main(["sample", str(run), "--labels", "flag", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(nearest: 'flags')" in err and "food, smileys_and_emotion" in err
    # --labels all: a block of rows per class, at most 10 columns, the class name on each block's first row
    assert main(["sample", str(run), "--labels", "all", "--n", "75", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 75 samples to {out}"
    from PIL import Image

    width, height = Image.open(out).size
    assert height == 2 * (9 * 29 + 1) and width < 2 * (12 * 29)  # 3 rows of 28×28 images per class, 10 wide


def test_verbose_auto_is_a_progress_bar_on_a_terminal_and_one_line_per_epoch_elsewhere(tmp_path):
    from tfgen.cli import fit_verbosity

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert fit_verbosity("auto", Stream(True)) == 1 and fit_verbosity("auto", Stream(False)) == 2
    assert fit_verbosity("0", Stream(True)) == 0 and fit_verbosity("1", Stream(False)) == 1


def test_train_refuses_to_overwrite_a_run(vae_run, capsys):
    assert main(["train", "vae", "--preset", "tiny", "--out", str(vae_run), "--verbose", "0"]) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nope"], "unknown model 'nope'"),
        (["train", "vae", "--preset", "huge"], "unknown preset 'huge'"),
        (["train", "vae", "--set", "latnt_dim=3"], "no hyperparameter 'latnt_dim'"),
        (["train", "vae", "--set", "latent_dim=big"], "expected int"),
        (["train", "vae", "--set", "latent_dim"], "expects KEY=VALUE"),
        (["train", "vae", "--epochs", "0"], "epochs must be a positive integer"),
        (["train", "vae", "--dataset", "not_a_dataset"], "unknown dataset 'not_a_dataset'"),
        (["sample", "/nonexistent/run", "--out", "x.png"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_with_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfgen: error:") and message in err and "\n" not in err


def test_console_entry_point_exits_2_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfgen.cli", "sample", str(tmp_path), "--out", "x.png"],
                            capture_output=True, text=True, timeout=HANG_SECONDS)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a tfgen run" in result.stderr


def test_piped_train_prints_one_line_per_epoch_and_no_tensorflow_log_line(tmp_path):
    """Output to a file or pipe: Keras' `verbose=2` (one line per epoch), not a progress bar redrawn with escape
    codes; and none of the C++ lines TensorFlow 2.21 prints before absl logging reads TF_CPP_MIN_LOG_LEVEL."""
    import os
    import re

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("TFGEN_TF_LOGS", None)
    done = subprocess.run([sys.executable, "-m", "tfgen", "train", "vae", "--preset", "tiny", "--epochs", "2",
                           "--limit", "128", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          env=env, timeout=HANG_SECONDS)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout and "━" not in done.stdout
    lines = done.stdout.splitlines()
    for epoch in (1, 2):
        after = lines[lines.index(f"Epoch {epoch}/2") + 1]
        assert re.match(r"2/2 - \d+s - .*loss: ", after), after
    assert not [line for line in done.stderr.splitlines() if re.match(r"[IWEF]\d{4} |WARNING: All log messages", line)
                or re.search(r"cudart_stub|cuInit|oneDNN", line)], done.stderr


def test_tracebacks_pass_the_log_filter(tmp_path):
    """With TFGEN_DEBUG=1 an error's traceback reaches stderr whole, through the filter on descriptor 2."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TFGEN_DEBUG": "1"}
    done = subprocess.run([sys.executable, "-m", "tfgen", "sample", str(tmp_path), "--out", "x.png"],
                          capture_output=True, text=True, env=env, timeout=HANG_SECONDS)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):") or "\nTraceback" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].endswith("not a tfgen run")


def test_the_log_filter_drops_tensorflow_lines_only_and_keeps_partial_lines():
    from tfgen.tflogs import LineFilter

    written = []
    filt = LineFilter(written.append)
    filt.feed(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              b"I0000 00:00:1796646479.186607    3956 port.cc:153] oneDNN custom operations are on.\nkeep 1\n"
              b"E0000 00:00:1796646482.023187    3956 cuda_platform.cc:52] failed call to cuInit\nEpoch 1 of 2")
    filt.flush()  # a prompt without a newline, after a quiet moment
    filt.feed(b" (rest)\nW0000 00:00:1.0 1 x.cc:1] later\nIndexError: list index out of range\n")
    assert b"".join(written) == b"keep 1\nEpoch 1 of 2 (rest)\nIndexError: list index out of range\n"


def test_set_reads_booleans_as_python_json_and_shell_users_write_them():
    from tfgen.cli import parse_overrides

    pixelcnn = "pixelcnn"
    for text, value in [("True", True), ("true", True), ("TRUE", True), ("False", False), ("false", False)]:
        assert parse_overrides(pixelcnn, [f"dynamic_binarization={text}"]) == {"dynamic_binarization": value}
    with pytest.raises(ValueError, match="dynamic_binarization=yes: expected bool"):
        parse_overrides(pixelcnn, ["dynamic_binarization=yes"])


def test_sample_passes_temperature_and_top_k_to_an_autoregressive_model(tmp_path, capsys):
    import keras
    import numpy as np
    from matplotlib.image import imread

    import tfgen
    from tfgen.plotting import save_grid

    run = tmp_path / "pixelcnn"
    run.mkdir()
    tfgen.get_model("pixelcnn", "tiny", seed=0).save(run / "model.keras")
    options = {"temperature": 0.5, "top_k": 1}
    assert main(["sample", str(run), "--n", "4", "--seed", "3", "--temperature", "0.5", "--top-k", "1",
                 "--out", str(tmp_path / "cli.png")]) == 0
    model = keras.saving.load_model(run / "model.keras")
    save_grid(model.sample(4, seed=3, **options), tmp_path / "direct.png")
    plain = tmp_path / "plain.png"
    save_grid(model.sample(4, seed=3), plain)
    cli, direct = (imread(tmp_path / f"{name}.png") for name in ("cli", "direct"))
    np.testing.assert_array_equal(cli, direct)
    assert not np.array_equal(cli, imread(plain))  # the options changed the draw
    assert main(["sample", str(run), "--n", "4", "--temperature", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "temperature must be a positive number, got 0.0" in capsys.readouterr().err


# ---------------------------------------------------------------------------- start-up without TensorFlow
C_LOG_LINE = r"(?m)^([IWEF]\d{4} |WARNING: All log messages before absl)"


@pytest.mark.parametrize("args, status", [(["--help"], 0), (["list"], 0), (["--version"], 0),
                                          (["train", "vea"], 2), (["train", "vae", "--bogus"], 2),
                                          (["train", "vae", "--set", "latent_dim=x"], 2),
                                          (["bench", "--precision", "float64"], 2)])
def test_help_list_version_and_argument_errors_do_not_import_tensorflow(args, status):
    """What `tfgen --help` & co. import, checked where it cannot depend on timing: TensorFlow is never loaded."""
    code = ("import sys; from tfgen_cli import main; status = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
            "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=HANG_SECONDS)
    assert result.returncode == status, result.stderr


@pytest.mark.parametrize("args", [["--help"], ["list"], ["train", "vea"]], ids=["help", "list", "arg-error"])
def test_python_m_tfgen_answers_without_importing_tensorflow_and_prints_no_c_logs(args):
    """`python -m tfgen` itself, not `main` called in a process: `-X importtime` lists every module the
    process imports, and TensorFlow and Keras (what made start-up take seconds) must not be among them.
    Checked on the imports rather than on a clock, which a loaded CI machine slows."""
    import re

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfgen", *args], capture_output=True, text=True,
                            timeout=HANG_SECONDS)
    assert result.returncode == (2 if args[0] == "train" else 0), result.stderr
    imported = re.findall(r"(?m)^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", result.stderr)
    assert "tfgen" in imported, result.stderr[-2000:]
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]
    assert not re.search(C_LOG_LINE, result.stderr), result.stderr


def test_version_and_python_m_tfgen():
    import tfgen

    result = subprocess.run([sys.executable, "-m", "tfgen", "--version"], capture_output=True, text=True,
                            timeout=HANG_SECONDS)
    assert result.returncode == 0 and result.stdout.strip() == f"tfgen {tfgen.__version__}"


def test_train_help_lists_every_models_presets(capsys):
    assert main(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "vae: conv_pool, default, tiny" in help_text and "diffusion: default, large, tiny" in help_text


def test_keras_loads_tfgen_files_after_import_tfgen_in_either_order(tmp_path):
    """`import tfgen` registers every family with Keras (it imports them), so a tfgen `.keras` file loads
    without custom_objects whether Keras was imported before or after tfgen."""
    import tfgen

    path = tmp_path / "gan.keras"
    tfgen.get_model("gan", "tiny").save(path)
    for imports in ("import tfgen; import keras", "import keras; import tfgen", "import tfgen.io; import keras"):
        code = f"import sys; {imports}; print(type(keras.saving.load_model(sys.argv[1])).__name__)"
        result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                                timeout=HANG_SECONDS)
        assert result.returncode == 0 and result.stdout.strip() == "GAN", (imports, result.stderr[-2000:])


def test_a_dataset_typo_suggests_the_nearest_name(capsys):
    assert main(["train", "vae", "--dataset", "fasion_mnist", "--preset", "tiny"]) == 2
    assert "unknown dataset 'fasion_mnist' (did you mean 'fashion_mnist'?)" in capsys.readouterr().err


def test_the_offline_message_names_flags_on_the_command_line_and_keywords_in_the_library(tmp_path, monkeypatch,
                                                                                         capsys):
    from tfgen import data

    monkeypatch.setattr("tfgen.data.tfds.network_available", lambda: False)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load("mnist", data_dir=str(tmp_path))
    assert "manual_dir=DIR" in str(info.value) and "data_dir=DIR" in str(info.value)
    assert main(["train", "vae", "--preset", "tiny", "--dataset", "mnist", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--manual-dir DIR" in err and "--data-dir DIR" in err and "--dataset idx:DIR" in err
    assert "manual_dir=" not in err and "data_dir=" not in err
