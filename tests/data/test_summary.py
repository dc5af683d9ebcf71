"""What a folder holds, said before training (`tfgen.data.summary`, `tfgen data`), its picture (real.png),
and a folder's errors answered before TensorFlow loads, corrupt files first."""

import subprocess
import sys

import numpy as np
from PIL import Image

from child_processes import HANG_SECONDS
from tfgen.cli import main
from tfgen.data.preview import class_blocks
from tfgen.data.summary import folder_summary

RNG = np.random.default_rng(0)


def make_folder(root, counts, size=8):
    """{class: number of RGB PNGs} (a class named "" puts its images directly in `root`)."""
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / name / f"{i:02d}.png")
    return root


def truncate(path):
    path.write_bytes(path.read_bytes()[:60])


def test_the_summary_names_the_source_counts_classes_split_and_every_file_not_read(tmp_path, monkeypatch):
    make_folder(tmp_path / "pics", {"cats": 20, "dogs": 10})
    (tmp_path / "pics" / "notes.txt").write_text("not a picture")
    (tmp_path / "pics" / "dogs" / "photo.webp").write_bytes(b"RIFF")
    (tmp_path / "pics" / ".DS_Store").write_bytes(b"")  # hidden: the system's, not the user's
    truncate(tmp_path / "pics" / "dogs" / "09.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "pics" / "cats" / "small.png")
    monkeypatch.chdir(tmp_path)

    summary = folder_summary("folder:pics", image_size=8, skip_corrupt=True)
    assert summary.source == f"folder:{tmp_path.resolve() / 'pics'}"
    assert summary.class_names == ("cats", "dogs") and summary.class_counts == (21, 9)
    assert (summary.train, summary.test, summary.image_shape) == (27, 3, (8, 8, 3))
    text = summary.text()
    assert "images: 30 read, used as 8x8x3" in text and "1 smaller than 8x8, upscaled" in text
    assert "skipped: 3 file(s): not an image (.txt, .webp not read" in text
    assert "notes.txt, dogs/photo.webp" in text and "corrupt: dogs/09.png (" in text and ".DS_Store" not in text
    assert "classes: 2: cats 21, dogs 9" in text and "split: 27 train, 3 held out for evaluation (10% of each" in text


def test_class_blocks_give_each_class_whole_rows_of_at_most_ten_columns():
    labels = np.repeat([0, 1, 2, 3], [30, 30, 30, 3])
    cells, columns, row_labels = class_blocks(labels, ("a", "b", "c", "d"))
    assert columns == 10 and len(cells) == 7 * 10  # 20 (two rows) for a, b, c; one row for d's 3
    assert row_labels == ["a", "", "b", "", "c", "", "d"]
    assert list(cells[:20]) == list(range(20)) and list(cells[60:63]) == [90, 91, 92] and set(cells[63:]) == {-1}
    cells, columns, row_labels = class_blocks(np.zeros(7, int))  # unlabelled: one block, no labels
    assert columns == 7 and list(cells) == list(range(7)) and row_labels is None


def test_tfgen_data_prints_the_summary_and_writes_real_png_with_a_block_per_class(tmp_path, capsys):
    make_folder(tmp_path / "pics", {"a": 12, "b": 12, "c": 12})
    assert main(["data", f"folder:{tmp_path / 'pics'}", "--image-size", "16", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "classes: 3: a 12, b 12, c 12" in out and f"picture: {tmp_path / 'out' / 'real.png'}" in out
    grid = np.asarray(Image.open(tmp_path / "out" / "real.png"))
    # 11 train images per class, 10 columns: two rows per class, of 16-pixel images with 1-pixel gaps, at 2x
    assert grid.shape[0] == (3 * 2 * (16 + 1) + 1) * 2 and grid.ndim == 3


NO_TENSORFLOW = ("import sys; from tfgen_cli import main; status = main(sys.argv[1:]); "
                 "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(status)")


def run_cli(*args):
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *map(str, args)], capture_output=True, text=True,
                            timeout=HANG_SECONDS)
    return result.returncode, result.stderr.strip()


def test_data_errors_come_before_tensorflow_loads_and_a_corrupt_file_before_the_batch_size(tmp_path):
    flat = make_folder(tmp_path / "flat", {"": 6})
    broken = make_folder(tmp_path / "broken", {"a": 5, "b": 5})
    truncate(broken / "b" / "03.png")  # its header is fine: only reading it through finds the cut
    base = ("train", "vae", "--preset", "tiny", "--out", tmp_path / "run")
    cases = [
        ((*base, "--dataset", f"folder:{tmp_path / 'missing'}"), "folder does not exist"),
        ((*base, "--dataset", f"folder:{broken}", "--batch-size", "64"), "cannot read image b/03.png"),
        ((*base, "--dataset", f"folder:{broken}", "--batch-size", "64", "--skip-corrupt"),
         "batch_size 64 is larger than the 8 training examples"),
        (("train", "cgan", "--preset", "tiny", "--dataset", f"folder:{flat}", "--batch-size", "2"),
         "needs class labels"),
        ((*base, "--dataset", f"npz:{tmp_path / 'x.npz'}"), "file does not exist"),
        ((*base, "--dataset", f"idx:{tmp_path / 'idx'}"), "directory does not exist"),
        ((*base, "--dataset", str(flat)), f"for a folder of images write folder:{flat}"),
    ]
    for args, message in cases:
        status, err = run_cli(*args)
        assert status == 2 and message in err and "\n" not in err, (args, err)
    assert not (tmp_path / "run").exists()
    status, err = run_cli("data", f"folder:{broken}", "--skip-corrupt")  # a summary, no picture: no TensorFlow
    assert status == 0, err


def test_each_file_is_checked_once_per_process(tmp_path, monkeypatch):
    """The command line checks a folder, then training summarises and reads it: headers are read once."""
    from tfgen.data import folder

    make_folder(tmp_path / "pics", {"a": 20, "b": 20})
    opened = []
    original = folder._read_header
    monkeypatch.setattr(folder, "_read_header", lambda path: opened.append(path) or original(path))
    for _ in range(3):
        folder_summary(f"folder:{tmp_path / 'pics'}")
    assert len(opened) == 40
