"""The `tfgen` command line: the contract in the README, and one-line errors with status 2."""

import csv
import json
import subprocess
import sys

import pytest

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
    assert "document" in lines["vae"] and "tiny" in lines["gan"]


def test_train_writes_the_run_directory(vae_run):
    config = json.loads((vae_run / "config.json").read_text())
    assert config["model"] == "vae" and config["preset"] == "tiny" and config["config"]["latent_dim"] == 3
    rows = list(csv.DictReader(open(vae_run / "history.csv")))
    assert len(rows) == 2
    assert {"loss", "kl_loss", "reconstruction_loss", "val_loss", "images_per_second"} <= set(rows[0])
    assert sorted(p.name for p in (vae_run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (vae_run / "checkpoints" / "last.keras").exists()
    assert json.loads((vae_run / "checkpoints" / "state.json").read_text())["epoch"] == 2
    assert (vae_run / "model.keras").exists()
    assert any((vae_run / "logs").rglob("events.out.tfevents*"))


def test_sample_writes_a_png(vae_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(vae_run), "--n", "16", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 16 samples" in capsys.readouterr().out


def test_sample_labels_all_draws_one_row_per_class_from_a_model_with_optional_labels(tmp_path, capsys):
    import tfgen

    for class_conditional in (True, False):
        run = tmp_path / f"diffusion-{class_conditional}"
        run.mkdir()
        tfgen.get_model("diffusion", "tiny", seed=0, class_conditional=class_conditional).save(run / "model.keras")
        args = ["sample", str(run), "--n", "25", "--labels", "all", "--steps", "2", "--out", str(tmp_path / "g.png")]
        if class_conditional:
            assert main(args) == 0
            assert "wrote 20 samples" in capsys.readouterr().out  # 2 per class, one row each
        else:
            assert main(args) == 2
            assert "--labels needs a model that takes labels" in capsys.readouterr().err


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
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a tfgen run" in result.stderr


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
    assert "temperature must be > 0, got 0.0" in capsys.readouterr().err
