"""`--keep best` (tfgen.keep_best): the best-scoring epoch is kept next to the last, and used by default."""

import json
import math

import keras
import numpy as np
import pytest

from child_processes import HANG_SECONDS
from tfgen import keep_best, runs
from tfgen.cli import main
from tfgen.keep_best import SCORE, EpochScore, KeepBest


class FakeScore:
    """Scores an epoch by the next value of a fixed series: what `KeepBest` does with a score, without sampling."""

    def __init__(self, series):
        self.series = iter(series)

    def __call__(self, model):
        return {SCORE: next(self.series)}


def fit(directory, series, epochs, initial_epoch=0, first_step=0, monkeypatch=None):
    """A tiny model trained `epochs` epochs of 2 steps with `KeepBest` scoring it by `series`; the epochs it saved."""
    saved = []
    if monkeypatch is not None:
        real = keep_best.save_model
        monkeypatch.setattr(keep_best, "save_model", lambda model, path: (saved.append(path.name), real(model, path)))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((8, 3), np.float32)
    history = model.fit(x, x[:, :1], batch_size=4, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
                        callbacks=[KeepBest(directory, FakeScore(series), first_step=first_step)])
    return saved, history.history


def test_the_best_epoch_by_the_score_is_kept_and_written_only_when_it_improves(tmp_path, monkeypatch):
    saved, history = fit(tmp_path / "best", [3.0, 1.0, 2.0, 0.5, math.nan, 0.7], epochs=6, monkeypatch=monkeypatch)
    assert saved == ["epoch_001.keras", "epoch_002.keras", "epoch_004.keras"]  # a NaN or a worse score never replaces
    best = runs.read_best(tmp_path / "best")
    assert (best["epoch"], best["step"], best["score"], best["file"]) == (4, 8, 0.5, "epoch_004.keras")
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["best.json", "epoch_004.keras"]
    assert history[SCORE][:4] == [3.0, 1.0, 2.0, 0.5]  # in the logs: history.csv and TensorBoard record it


def test_a_later_healthy_epoch_within_the_tie_of_the_lowest_score_is_kept_an_unhealthy_one_is_not(tmp_path,
                                                                                                  monkeypatch):
    tie = keep_best.TIE
    series = [{SCORE: 1.0, keep_best.DIVERSITY: 0.8},
              {SCORE: 0.2, keep_best.DIVERSITY: 0.8},               # the lowest
              {SCORE: 0.2 + 0.8 * tie, keep_best.DIVERSITY: 0.7},   # healthy, within the tie: kept (trained longer)
              {SCORE: 0.2 + 0.9 * tie, keep_best.DIVERSITY: 0.45},  # within the tie but a class below 0.5: not
              {SCORE: 0.2 + 1.5 * tie, keep_best.DIVERSITY: 0.9},   # healthy, outside the tie: not
              {SCORE: 0.2 + 0.5 * tie}]                             # no diversity measured: a tie as well
    saved = []
    real = keep_best.save_model
    monkeypatch.setattr(keep_best, "save_model", lambda model, path: (saved.append(path.name), real(model, path)))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    values = iter(series)
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), batch_size=4, epochs=6, verbose=0,
              callbacks=[KeepBest(tmp_path / "best", lambda m: next(values))])
    assert saved == ["epoch_001.keras", "epoch_002.keras", "epoch_003.keras", "epoch_006.keras"]
    best = runs.read_best(tmp_path / "best")
    assert best["epoch"] == 6 and best["lowest"] == 0.2  # the lowest stays the yardstick: no drift by ties


def test_a_resumed_run_replaces_its_best_only_with_a_better_epoch_and_clears_what_a_kill_left(tmp_path, monkeypatch):
    fit(tmp_path / "best", [3.0, 1.0, 2.0], epochs=3)
    (tmp_path / "best" / ".epoch_004.x1y2.keras").write_text("a write a kill interrupted")
    (tmp_path / "best" / "notes.txt").write_text("the user's")
    saved, _ = fit(tmp_path / "best", [1.5, 0.8], epochs=5, initial_epoch=3, first_step=6, monkeypatch=monkeypatch)
    assert saved == ["epoch_005.keras"]  # epoch 4's 1.5 is worse than epoch 2's 1.0 from before the resume
    assert runs.read_best(tmp_path / "best")["step"] == 10
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["best.json", "epoch_005.keras", "notes.txt"]


def test_best_json_naming_a_missing_file_is_a_one_line_error(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "best.json").write_text(json.dumps({"epoch": 3, "file": "epoch_003.keras"}))
    with pytest.raises(runs.RunDirectoryError, match="names epoch_003.keras, which is not in"):
        runs.read_best(tmp_path / "best")


# ---------------------------------------------------------------------------- the score
class FakeGenerator:
    """A stand-in generator drawing real digits: `pool[c]` holds the images class c is drawn from."""

    def __init__(self, pool, accepts_labels=True):
        self.pool, self.accepts_labels = pool, accepts_labels
        self.image_shape, self.num_classes = pool[0].shape[1:], len(pool)

    def sample(self, n, labels=None, seed=None):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, self.num_classes, n) if labels is None else labels
        return np.stack([self.pool[c][rng.integers(len(self.pool[c]))] for c in labels])


@pytest.fixture(scope="module")
def digit_score(digits):
    x_train, y_train, x_test, y_test = digits
    held_out = np.concatenate([np.flatnonzero(y_test == c)[:25] for c in range(10)])
    by_class = [x_train[y_train == c][:200] for c in range(10)]
    return EpochScore(x_test[held_out], y_test[held_out], seed=0), by_class


def test_the_score_separates_varied_samples_from_collapsed_ones(digit_score):
    score, by_class = digit_score
    varied = score(FakeGenerator(by_class))
    collapsed = score(FakeGenerator([images[:1] for images in by_class]))  # one image per class
    one_class = score(FakeGenerator([images[:1] if c == 3 else images for c, images in enumerate(by_class)]))
    # Measured: varied -0.005, one class collapsed 1.12 (0.12 of it KID), all collapsed 1.95 (0.95 KID).
    assert varied[SCORE] < 0.1 and varied[keep_best.DIVERSITY] > 0.8
    assert collapsed[SCORE] > 1.8 and collapsed[keep_best.DIVERSITY] < 1e-6
    # One class of ten collapsed: KID over all classes moves a little, the health term by 1.
    assert one_class[keep_best.KID] / score.kid_scale < 0.25 and one_class[SCORE] > varied[SCORE] + 1


def test_a_model_without_labels_is_scored_on_all_its_samples_as_one_group(digit_score):
    score, by_class = digit_score
    varied = score(FakeGenerator(by_class, accepts_labels=False))
    one_digit = score(FakeGenerator([by_class[0][:1]] * 10, accepts_labels=False))
    assert varied[SCORE] < 0.3 and one_digit[SCORE] > 1.5


def test_samples_that_are_not_finite_score_nan(digit_score):
    score, by_class = digit_score
    assert math.isnan(score(FakeGenerator([np.full_like(images, np.nan) for images in by_class]))[SCORE])


# ---------------------------------------------------------------------------- the command line
def test_gans_keep_the_best_by_default_and_the_other_families_the_last():
    import tfgen
    from tfgen import catalog

    defaults = {name: keep_best.check_keep(None, tfgen.get_model_class(name)) for name in tfgen.list_models()}
    assert defaults["gan"] == defaults["cgan"] == "best" and defaults["vae"] == defaults["diffusion"] == "last"
    assert {name: "last" if f.quality_monotone else "best" for name, f in catalog.families().items()} == defaults


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cgan"
    assert main(["train", "cgan", "--preset", "tiny", "--epochs", "3", "--batch-size", "32", "--limit", "128",
                 "--out", str(out), "--verbose", "0"]) == 0
    return out


def test_a_gan_run_keeps_its_best_epoch_and_sample_says_which_it_uses(cgan_run, tmp_path, capsys):
    best = runs.read_best(cgan_run / "best")
    assert json.loads((cgan_run / "config.json").read_text())["keep"] == "best"
    assert 1 <= best["epoch"] <= 3 and best["file"] == f"epoch_{best['epoch']:03d}.keras"
    header = (cgan_run / "history.csv").read_text().splitlines()[0].split(",")
    assert {SCORE, keep_best.KID, keep_best.DIVERSITY} <= set(header)
    assert main(["sample", str(cgan_run), "--n", "20", "--out", str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"using the best epoch {best['epoch']} of 3 (score {best['score']:.3g}); --checkpoint last for the last")
    assert main(["sample", str(cgan_run), "--n", "20", "--checkpoint", "last", "--out", str(tmp_path / "b.png")]) == 0
    last = f"using the last epoch 3 (model.keras), not the best epoch {best['epoch']}"
    assert capsys.readouterr().out.startswith(last)


def test_export_uses_the_best_epoch_and_records_it(cgan_run, tmp_path, capsys):
    from tfgen.export import read_metadata

    assert main(["export", str(cgan_run), "--out", str(tmp_path / "export")]) == 0
    source = read_metadata(tmp_path / "export")["source"]
    assert source["checkpoint"] == "best" and source["epoch"] == runs.read_best(cgan_run / "best")["epoch"]
    assert source["file"].endswith(runs.read_best(cgan_run / "best")["file"])


def test_eval_scores_the_best_epoch_and_records_which(cgan_run, tmp_path, capsys):
    best = runs.read_best(cgan_run / "best")
    assert main(["eval", str(cgan_run), "--n", "50", "--json", str(tmp_path / "eval.json")]) == 0
    assert capsys.readouterr().out.startswith(f"using the best epoch {best['epoch']} of 3")
    recorded = json.loads((tmp_path / "eval.json").read_text())["checkpoint"]
    assert recorded == {"checkpoint": "best", "epoch": best["epoch"], "epochs": 3}


def test_resume_continues_with_the_best_so_far(tmp_path, monkeypatch):
    from tfgen.training import resume, train

    series = iter([3.0, 1.0, 1.5, 1.2])  # epochs 3 and 4, after the resume, are worse than epoch 2
    monkeypatch.setattr(EpochScore, "__call__", lambda self, model: {SCORE: next(series)})
    out = train("cgan", "tiny", limit=128, batch_size=32, epochs=2, out=tmp_path / "run", verbose=0)
    assert runs.read_best(out / "best")["epoch"] == 2
    resume(out, epochs=4, verbose=0)
    assert runs.read_best(out / "best")["epoch"] == 2 and runs.read_state(out)["epoch"] == 4
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    column = header.index(SCORE)
    assert [float(r.split(",")[column]) for r in (out / "history.csv").read_text().splitlines()[1:]] == [3, 1, 1.5, 1.2]


def test_keep_last_writes_no_best_and_sample_uses_the_last(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["train", "gan", "--preset", "tiny", "--steps", "4", "--epoch-steps", "2", "--batch-size", "32",
                 "--limit", "128", "--keep", "last", "--out", str(out), "--verbose", "0"]) == 0
    assert not (out / "best").exists() and json.loads((out / "config.json").read_text())["keep"] == "last"
    assert runs.run_checkpoint(out)["path"] == out / "model.keras"
    capsys.readouterr()
    assert main(["sample", str(out), "--n", "4", "--checkpoint", "best"]) == 2
    assert "kept no best epoch" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "gan", "--keep", "worst"], ["sample", "RUN", "--checkpoint", "first"],
                                  ["train", "--resume", "RUN", "--keep", "last"]])
def test_bad_keep_and_checkpoint_values_are_argument_errors_without_tensorflow(argv):
    import subprocess
    import sys

    code = ("import sys; from tfgen_cli import main; status = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
            "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=HANG_SECONDS)
    assert result.returncode == 2, result.stderr
    assert "--keep" in result.stderr or "--checkpoint" in result.stderr
