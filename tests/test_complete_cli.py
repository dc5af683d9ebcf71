"""`tfgen complete`, `tfgen edit`, `tfgen interpolate` and `tfgen transfer` on tiny runs: the grids they write and their one-line errors.

(The completions themselves are tested in tests/test_complete.py.)"""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfgen.cli import main


def train(root, name, *extra):
    out = root / name
    assert main(["train", name, "--preset", "tiny", "--steps", "2", "--batch-size", "16", "--limit", "64",
                 "--out", str(out), "--verbose", "0", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {name: train(root, name) for name in ("pixelcnn", "diffusion", "cvae")}


def grid_size(path):
    return np.asarray(Image.open(path)).shape[:2]


def test_complete_writes_a_row_per_image(runs, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["complete", str(runs["pixelcnn"]), "--from-test", "0,1", "--mask", "bottom", "--n", "3",
                 "--out", str(out)]) == 0
    assert "3 completions" in capsys.readouterr().out
    height, width = grid_size(out)
    assert height < width  # 2 rows of 5 tiles (image, masked input, 3 completions)


def test_complete_takes_an_image_file_and_a_box(runs, tmp_path):
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(tmp_path / "digit.png")
    assert main(["complete", str(runs["diffusion"]), "--image", str(tmp_path / "digit.png"), "--mask",
                 "box:8,8,12,12", "--n", "2", "--steps", "2", "--resample", "1"]) == 0
    assert (runs["diffusion"] / "samples" / "complete.png").exists()


def test_a_cvae_completes_without_being_told_the_class(runs, tmp_path):
    Image.fromarray(np.full((28, 28), 90, np.uint8)).save(tmp_path / "mine.png")
    assert main(["complete", str(runs["cvae"]), "--image", str(tmp_path / "mine.png"), "--mask", "bottom",
                 "--n", "2", "--iterations", "2", "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()


def test_edit_and_interpolate(runs, tmp_path):
    assert main(["edit", str(runs["diffusion"]), "--from-test", "3", "--strength", "0.4", "--n", "2", "--steps", "4",
                 "--out", str(tmp_path / "edit.png")]) == 0
    assert (tmp_path / "edit.png").exists()
    assert main(["interpolate", str(runs["cvae"]), "--from-test", "0,1", "--steps", "5",
                 "--out", str(tmp_path / "path.png")]) == 0
    height, width = grid_size(tmp_path / "path.png")
    assert width > 4 * height


def test_transfer_redraws_each_image_as_each_class(runs, tmp_path, capsys):
    Image.fromarray(np.full((28, 28), 90, np.uint8)).save(tmp_path / "mine.png")
    assert main(["transfer", str(runs["cvae"]), "--image", str(tmp_path / "mine.png"), "--label", "4",
                 "--to", "1,7", "--out", str(tmp_path / "styles.png")]) == 0
    assert "drawn as class 1, 7" in capsys.readouterr().out
    height, width = grid_size(tmp_path / "styles.png")
    assert 2.5 * height < width < 3.5 * height  # one row: the image, then classes 1 and 7
    assert main(["transfer", str(runs["cvae"]), "--from-test", "0,1", "--out", str(tmp_path / "all.png")]) == 0
    height, width = grid_size(tmp_path / "all.png")
    assert width > 4 * height  # two rows of 11 tiles: the image and all ten classes


@pytest.mark.parametrize("argv, message", [
    (["complete", "{pixelcnn}", "--from-test", "0", "--mask", "middle"], "is not a mask"),
    (["complete", "{pixelcnn}", "--mask", "top"], "give the images with --image PATH"),
    (["complete", "{pixelcnn}", "--from-test", "0", "--mask", "top", "--iterations", "3"],
     "--iterations: PixelCNN has no such option"),
    (["edit", "{pixelcnn}", "--from-test", "0"], "pixelcnn cannot edit an image"),
    (["interpolate", "{diffusion}", "--from-test", "0,1"], "diffusion cannot interpolate"),
    (["interpolate", "{cvae}", "--from-test", "0"], "interpolate takes two images"),
    (["transfer", "{diffusion}", "--from-test", "0"], "diffusion cannot redraw an image as another class"),
    (["transfer", "{cvae}", "--image", "{png}"], "requires labels: give the images' class with --label"),
    (["transfer", "{cvae}", "--from-test", "0", "--to", "12"], "outside [0, 10)"),
])
def test_errors_are_one_line(runs, tmp_path, capsys, argv, message):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    argv = [a.format(png=tmp_path / "x.png", **runs) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_help_needs_no_tensorflow():
    code = ("import sys; from tfgen_cli import main\n"
            "for command in ('complete', 'edit', 'interpolate', 'transfer'):\n"
            "    try: main([command, '--help'])\n"
            "    except SystemExit: pass\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
