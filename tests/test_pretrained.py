"""Trained presets (`tfgen.pretrained`): save → load samples as the run did, the sha256 check, preset names as
a command's RUN, `tfgen list` without TensorFlow, and `--init` fine-tuning. Tiny models, made here."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from child_processes import HANG_SECONDS
from tfgen import finetune, pretrained
from tfgen.pretrained import making
from tfgen.cli import main as tfgen

ROOT = Path(__file__).resolve().parents[1]


def fake_run(root: Path, model, preset="tiny", **config) -> Path:
    """A run directory as `tfgen train` leaves it (config.json, model.keras), without training."""
    from tfgen.io import save_model, write_json

    root.mkdir(parents=True)
    write_json(root / "config.json", {"model": model.registry_name, "preset": preset, "dataset": "mnist_bundled",
                                      "steps": 10, "seed": 0, "config": model.get_config(), **config})
    save_model(model, root / "model.keras")
    return root


def averaged_model(name, **overrides):
    """A tiny compiled model whose trained network differs from the average it samples with."""
    from tfgen.registry import get_model

    model = get_model(name, "tiny", **overrides)
    model.default_compile()
    trained = model.network if name == "diffusion" else model.generator
    for weight in trained.trainable_weights:
        weight.assign(weight + 0.05)
    return model


@pytest.fixture(scope="module")
def shipped_root(tmp_path_factory):
    """A `tfgen/pretrained`-like root holding digits/diffusion, made from a (fake) run; and the model."""
    tmp = tmp_path_factory.mktemp("presets")
    model = averaged_model("diffusion")
    run = fake_run(tmp / "run", model, class_names=[str(k) for k in range(10)])
    making.save_preset(run, tmp / "root" / "digits" / "diffusion")
    return tmp / "root", model


@pytest.fixture
def shipped(shipped_root, monkeypatch):
    monkeypatch.setattr(pretrained, "SHIPPED_ROOT", shipped_root[0])
    return shipped_root


def test_a_saved_preset_samples_exactly_as_the_run_and_ships_the_average_once(shipped):
    root, model = shipped
    path = root / "digits" / "diffusion"
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["family"] == "diffusion" and meta["shared"] == {"network": "ema_network"}
    assert meta["command"] == "tfgen train diffusion --preset tiny --dataset mnist_bundled --steps 10 --seed 0"
    assert meta["parameters"] == model.count_params() - model.network.count_params()
    loaded = pretrained.from_preset(path)
    np.testing.assert_array_equal(loaded.sample(4, seed=3, steps=3), model.sample(4, seed=3, steps=3))
    for a, b in zip(loaded.network.weights, model.ema_network.weights):  # the trained copy starts as the average
        np.testing.assert_array_equal(a, b)


def test_a_gan_preset_ships_its_averaged_generator(tmp_path):
    model = averaged_model("gan", ema_decay=0.9)
    from tfgen.io import save_model

    save_model(model, tmp_path / "gan.keras")
    path = making.save_preset(tmp_path / "gan.keras", tmp_path / "gan", command="tfgen train gan")
    loaded = pretrained.from_preset(path)
    assert pretrained.read_metadata(path)["shared"] == {"generator": "ema_generator"}
    np.testing.assert_array_equal(loaded.sample(6, seed=1), model.sample(6, seed=1))
    for a, b in zip(loaded.discriminator.weights, model.discriminator.weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damage", ["changed", "truncated"])
def test_a_changed_or_truncated_weights_file_is_refused_in_one_line(shipped, tmp_path, damage):
    copy = shutil.copytree(shipped[0] / "digits" / "diffusion", tmp_path / "preset")
    weights = copy / pretrained.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    if damage == "changed":
        data[len(data) // 2] ^= 1
    else:
        data = data[:len(data) // 2]
    weights.write_bytes(bytes(data))
    with pytest.raises(pretrained.PresetError) as err:
        pretrained.from_preset(copy)
    assert "\n" not in str(err.value) and str(weights) in str(err.value) and "sha256" in str(err.value)


def test_a_preset_name_is_a_run_for_sample_and_an_unknown_one_lists_them(shipped, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tfgen(["sample", "digits/diffusion", "--n", "4", "--steps", "2", "--labels", "3,7"]) == 0
    assert (tmp_path / "samples" / "digits-diffusion-sample.png").stat().st_size > 0  # not into the package
    assert tfgen(["sample", "digits/difusion"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'digits/diffusion'" in err and "shipped presets: digits/diffusion" in err


def test_tfgen_list_shows_the_presets_without_importing_tensorflow(shipped):
    pretrained.write_metrics(shipped[0] / "digits" / "diffusion", {"fid": 12.345, "precision": 0.8})
    # Through the `tfgen` script's entry (`tfgen_cli`), which leaves `import tfgen`'s model import out.
    code = (f"import sys; from pathlib import Path; import tfgen_cli; import tfgen.pretrained as p; "
            f"p.SHIPPED_ROOT = Path({str(shipped[0])!r}); tfgen_cli.main(['list']); "
            f"assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_SECONDS,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("digits/diffusion"))
    assert "28x28x1" in line and "FID 12.3" in line and "precision 0.8" in line


def test_init_takes_the_weights_whose_shapes_match_and_names_the_others(shipped):
    from tfgen.registry import get_model

    source = pretrained.from_preset("digits/diffusion")
    model = get_model("diffusion", "tiny", image_shape=(32, 32, 3))  # 3 channels, a U-Net level more
    left = finetune.take_matching_weights(model, "digits/diffusion")
    assert "network/stem/kernel: (3, 3, 3, 8) here vs (3, 3, 1, 8) in digits/diffusion" in left, left
    theirs = dict(zip(finetune.weight_keys(source), source.weights))
    taken = [(key, v) for key, v in zip(finetune.weight_keys(model), model.weights)
             if not any(line.startswith(f"{key}:") for line in left)]
    assert len(taken) > len(left) and all(np.array_equal(v, theirs[key]) for key, v in taken)
    with pytest.raises(pretrained.PresetError, match="same family only"):
        finetune.take_matching_weights(get_model("flow", "tiny"), "digits/diffusion")


def test_train_init_of_another_family_is_refused_before_tensorflow(shipped, capsys):
    assert tfgen(["train", "vae", "--init", "digits/diffusion"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "trained diffusion" in err and "same family only" in err


def test_train_init_fine_tunes_from_a_preset_on_a_colour_folder(shipped, tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("red", "blue"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "folder" / name / f"{i}.png")
    out = tmp_path / "run"
    assert tfgen(["train", "diffusion", "--preset", "tiny", "--init", "digits/diffusion", "--dataset",
                  f"folder:{tmp_path / 'folder'}", "--steps", "1", "--batch-size", "4", "--out", str(out),
                  "--verbose", "0"]) == 0
    err = capsys.readouterr().err
    assert "--init digits/diffusion: took" in err and "network/stem/kernel: (3, 3, 3, 8) here vs (3, 3, 1, 8)" in err
    assert "label_embedding" in err  # 2 classes here, 10 digits there
    assert json.loads((out / "config.json").read_text())["init"] == "digits/diffusion"
