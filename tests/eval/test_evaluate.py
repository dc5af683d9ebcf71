"""evaluate(), its real-data reference row, the `tfgen eval` CLI and the scoring callbacks."""

import csv
import json
import math
import re

import keras
import numpy as np
import pytest
from eval_checks import NoiseModel

import tfgen
from tfgen.eval.scoring import evaluate, format_table, name_classes

QUALITY_KEYS = ("fid", "kid", "kid_std", "classifier_score", "precision", "recall")


class RealDigits(NoiseModel):
    """A conditional "generator" that returns real training digits of the requested class."""

    accepts_labels = requires_labels = True

    def __init__(self, images, labels):
        self.by_class = [images[labels == c] for c in range(10)]

    def sample(self, n, labels=None, seed=None):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 10, n) if labels is None else np.asarray(labels)
        return np.stack([self.by_class[y][rng.integers(len(self.by_class[y]))] for y in labels])


def _finite(result, keys):
    for key in keys:
        assert key in result, f"missing {key}"
        assert np.isfinite(result[key]), f"{key} = {result[key]}"


def test_evaluate_tiny_vae_returns_every_key(evaluator, random_batches):
    model = tfgen.get_model("vae", "tiny", seed=0)
    model.default_compile()
    model.fit(random_batches, epochs=1, verbose=0)
    result = evaluate(model, n=200, ks=(1, 5), n_likelihood=40, kid_subsets=10, evaluator=evaluator)
    _finite(result, QUALITY_KEYS + ("elbo_nats", "iwae_nats", "bits_per_dim", "evaluator_accuracy"))
    _finite(result["reference"], QUALITY_KEYS)
    assert result["n_samples"] == 200 and result["dataset"] == "mnist_bundled"
    assert result["data_variant"] == "binarised (threshold 0.5)"
    assert {r["variant"] for r in result["likelihood"]} == {
        "binarised (threshold 0.5)", "continuous (Bernoulli cross-entropy on grayscale)"}
    assert result["iwae_k"] == 5 and result["iwae_nats"] <= result["elbo_nats"] + 5
    assert "conditional_accuracy" not in result
    json.dumps(result)  # JSON-ready
    table = format_table(result)
    assert "not Inception FID" in table and "real (train vs test)" in table and "binarised" in table
    assert {"active_units", "kl_per_dim"} <= set(result["health"]) and "health: active_units" in table


def test_reference_row_is_far_better_than_noise(evaluator):
    result = evaluate(NoiseModel(), n=500, evaluator=evaluator, kid_subsets=20)
    ref = result["reference"]
    assert ref["fid"] * 20 < result["fid"], (ref["fid"], result["fid"])
    assert ref["kid"] + 10 * ref["kid_std"] < result["kid"]
    assert ref["precision"] > 0.6 and result["precision"] < 0.05
    assert ref["recall"] > 0.6
    # real digits are confidently and evenly classified: near the maximum of 10
    assert ref["classifier_score"] > 7 > result["classifier_score"]
    assert "likelihood" not in result and "elbo_nats" not in result


def test_real_digits_as_a_conditional_model_reach_the_reference(evaluator, digits):
    x_train, y_train, _, _ = digits
    result = evaluate(RealDigits(x_train, y_train), n=500, evaluator=evaluator, kid_subsets=20, seed=1)
    ref = result["reference"]
    assert result["conditional_accuracy"] >= 0.95
    assert ref["conditional_accuracy"] == pytest.approx(evaluator.accuracy, abs=1e-3)
    assert len(result["conditional_accuracy_per_class"]) == 10
    assert min(result["conditional_accuracy_per_class"]) >= 0.8
    # real digits of every class: each class covered, and as varied as the test images of the class
    assert len(result["recall_per_class"]) == 10 and min(result["recall_per_class"]) > 0.5
    assert 0.8 < result["diversity_min"] <= max(result["diversity_per_class"]) < 1.2
    assert "recall per class: 0:" in format_table(result) and "diversity per class: 0:" in format_table(result)
    # the same distribution as the reference row: same-order distances
    assert result["fid"] < 3 * ref["fid"] + 1
    assert abs(result["kid"] - ref["kid"]) < 5 * (result["kid_std"] + ref["kid_std"])


def test_a_model_with_optional_labels_is_scored_on_class_conditional_samples(evaluator):
    from tfgen.cli import with_sampling_steps

    # Diffusion trained with class conditioning: labels optional (not `conditional`) but accepted.
    model = with_sampling_steps(tfgen.get_model("diffusion", "tiny", seed=0), 2)
    assert not model.requires_labels and model.accepts_labels
    result = evaluate(model, n=20, evaluator=evaluator, kid_subsets=2, likelihood=False)
    assert result["conditional"] and 0.0 <= result["conditional_accuracy"] <= 1.0
    assert len(result["conditional_accuracy_per_class"]) == 10
    assert "cond. accuracy" in format_table(result)



def test_an_autoregressive_model_gets_exact_nlls_on_both_binarisations(evaluator, digits):
    from tfgen.eval import likelihood as lik

    model = tfgen.get_model("pixelcnn", "tiny", seed=0)
    result = evaluate(model, n=20, n_likelihood=30, kid_subsets=2, evaluator=evaluator)
    fixed, stochastic = result["likelihood"]
    assert fixed["variant"] == result["data_variant"] == model.data_variant
    assert stochastic["variant"] == lik.STOCHASTIC.format(seed=0) and stochastic["n_images"] == 30
    assert result["nll_nats"] == fixed["nll_nats"] and result["nll_nats_stochastic"] == stochastic["nll_nats"]
    # The first 30 test digits, thresholded by the model and drawn with the evaluation's seed.
    x_test = digits[2][:30]
    assert fixed["nll_nats"] == pytest.approx(-np.mean(model.log_prob(x_test)), rel=1e-5)
    drawn = lik.stochastic_binarize(x_test, seed=0)
    assert stochastic["nll_nats"] == pytest.approx(-np.mean(model.log_prob(drawn)), rel=1e-5)
    assert np.mean(drawn != lik.binarize(x_test)) > 0.01  # grey edge pixels land on both sides
    assert "stochastically binarised" in format_table(result)


def test_cli_eval_writes_json(tmp_path, evaluator, capsys, monkeypatch):
    from tfgen.cli import main
    from tfgen.training import train

    run = train("vae", "tiny", epochs=1, limit=256, out=tmp_path / "run", verbose=0)
    out = tmp_path / "scores.json"
    code = main(["eval", str(run), "--n", "100", "--json", str(out), "--k", "1,3", "--n-likelihood", "30"])
    assert code == 0
    result = json.loads(out.read_text())
    _finite(result, QUALITY_KEYS + ("elbo_nats", "iwae_nats", "bits_per_dim", "evaluator_accuracy"))
    assert result["n_samples"] == 100 and result["dataset"] == "mnist_bundled" and result["data_variant"]
    printed = capsys.readouterr().out
    assert "FID (evaluator)" in printed and str(out) in printed
    assert main(["eval", str(tmp_path / "nope")]) == 2
    # Inception features without the weights file: one line naming it, status 2, nothing downloaded
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("TFGEN_INCEPTION_WEIGHTS", raising=False)
    assert main(["eval", str(run), "--n", "100", "--features", "inception"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tfgen: error: Inception-v3 weights not found at ") and "_notop.h5" in err


def test_sample_score_callback_logs_before_csv_logger(tmp_path, evaluator, random_batches):
    from tfgen.callbacks import SampleScore

    model = tfgen.get_model("gan", "tiny", seed=0)
    model.default_compile()
    score = SampleScore(n=100, every=2, evaluator=evaluator)
    history = model.fit(random_batches, epochs=3, verbose=0, callbacks=[
        score, keras.callbacks.CSVLogger(str(tmp_path / "history.csv"))])
    fid = history.history["fid"]
    assert math.isnan(fid[0]) and np.isfinite(fid[1]) and np.isfinite(fid[2])  # epoch 2, and the last
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [r["fid"] for r in rows][0] == "nan" and float(rows[1]["fid"]) == pytest.approx(fid[1])
    assert np.isfinite(history.history["kid"][1])


def test_time_budget_stops_training(random_batches):
    from tfgen.callbacks import TimeBudget

    class OneSecondPerBatch(keras.callbacks.Callback):  # a fake clock: each batch takes exactly one second
        def on_train_batch_end(self, batch, logs=None):
            now[0] += 1.0

    now = [100.0]
    model = tfgen.get_model("vae", "tiny", seed=0)
    model.default_compile()
    budget = TimeBudget(seconds=3, clock=lambda: now[0])
    history = model.fit(random_batches.repeat(), steps_per_epoch=5, epochs=10_000, verbose=0,
                        callbacks=[OneSecondPerBatch(), budget])
    assert budget.stopped_early and budget.batches == 3 and int(model.optimizer.iterations.numpy()) == 3
    assert len(history.history["loss"]) == 1 and history.history["elapsed_seconds"] == [3.0]
    with pytest.raises(ValueError):
        TimeBudget(0)


def test_step_budget_stops_after_exactly_that_many_batches(random_batches):
    from tfgen.callbacks import StepBudget

    model = tfgen.get_model("vae", "tiny", seed=0)
    model.default_compile()
    budget = StepBudget(11, exclude_first_batch=True)
    history = model.fit(random_batches, epochs=100, verbose=0, callbacks=[budget])  # 8 batches an epoch
    assert int(model.optimizer.iterations.numpy()) == 11 and budget.batches == 11 and budget.stopped_early
    assert len(history.history["loss"]) == 2 and budget.first_batch_seconds is not None
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        StepBudget(0)


class Shapes:
    """A "generator" of the synthetic folder's two kinds (tests/eval_checks.py): stripes for label 0, discs for 1."""

    image_shape = (16, 16, 3)
    num_classes = 2

    def __init__(self, conditional):
        self.accepts_labels = self.requires_labels = conditional

    def sample(self, n, labels=None, seed=None):
        from eval_checks import discs, stripes

        labels = np.random.default_rng(seed).integers(0, 2, n) if labels is None else np.asarray(labels)
        kinds = (stripes(n, self.image_shape, seed), discs(n, self.image_shape, seed))
        return np.where(labels[:, None, None, None] == 0, *kinds)


TINY_EVALUATOR = {"epochs": 8, "batch_size": 32, "width": 8, "feature_dim": 16, "verbose": 0}


def test_an_unlabelled_folder_is_scored_on_autoencoder_features_and_class_scores_are_said_not_to_apply(
        monkeypatch, tmp_path):
    from eval_checks import FakeFolder, install

    from tfgen.eval import get_evaluator

    install(monkeypatch, FakeFolder(n_train=128, n_test=64, labelled=False))
    data = {"image_size": 16}
    get_evaluator("folder:flat", directory=tmp_path / "ev", data_kwargs=data, **TINY_EVALUATOR)
    result = evaluate(Shapes(conditional=False), dataset="folder:flat", data_kwargs=data, n=40,
                      evaluator_dir=tmp_path / "ev", kid_subsets=2, likelihood=False)
    assert result["features"] == "autoencoder" and result["evaluator_accuracy"] is None
    assert "without labels" in result["evaluator"] and "autoencoder" in result["fid_note"]
    assert result["class_scores"].endswith("the dataset has no labels")
    _finite(result, ("fid", "kid", "precision", "recall"))
    _finite(result["reference"], ("fid", "kid", "precision", "recall"))
    assert "classifier_score" not in result and "conditional_accuracy" not in result and not result["conditional"]
    assert result["data_kwargs"] == data
    json.dumps(result)
    table = format_table(result)
    assert "classifier score and conditional accuracy do not apply: the dataset has no labels" in table
    assert "cond. accuracy" not in table


def test_a_labelled_colour_folder_gets_a_classifier_and_conditional_accuracy(monkeypatch, tmp_path):
    from eval_checks import FakeFolder, install

    from tfgen.eval import get_evaluator

    install(monkeypatch, FakeFolder(n_train=128, n_test=64))
    # a tiny evaluator, trained into the cache; evaluate then finds it there (the data are the same)
    trained = get_evaluator("folder:shapes", data_kwargs={"image_size": 16}, **TINY_EVALUATOR)
    result = evaluate(Shapes(conditional=True), dataset="folder:shapes", data_kwargs={"image_size": 16}, n=40,
                      kid_subsets=2, likelihood=False, verbose=0)
    assert result["features"] == "classifier" and result["evaluator_accuracy"] == trained.accuracy > 0.9
    assert result["conditional"] and result["conditional_accuracy"] > 0.9
    assert len(result["conditional_accuracy_per_class"]) == 2 and "class_scores" not in result
    _finite(result, QUALITY_KEYS)
    # A run's class names (its folder names) name the per-class report, in the JSON and the table.
    named = name_classes(dict(result), ["circles", "squares"])
    assert named["class_names"] == ["circles", "squares"]
    by_class = json.loads(json.dumps(named))["conditional_accuracy_by_class"]
    assert by_class == dict(zip(["circles", "squares"], result["conditional_accuracy_per_class"]))
    assert re.search(r"per class: circles:\S+ squares:\S+", format_table(named))
    with pytest.raises(ValueError, match="class_names must name the model's 2 classes, got 3"):
        name_classes(dict(result), ["a", "b", "c"])
def test_table_columns_never_run_together():
    """A negative KID with its spread is wider than the old fixed 18-character cell: FID and KID ran
    together as `0.225-5.16e-04 ± 0.0065`."""
    scores = dict(fid=0.225, kid=-5.16e-4, kid_std=0.0065, classifier_score=9.1, precision=0.9, recall=0.8)
    result = dict(model="vae", dataset="mnist_bundled", n_samples=100, n_real_test=100, evaluator_dataset="mnist",
                  evaluator_accuracy=0.99, reference=dict(scores, fid=0.0123456), **scores)
    header, model_row, real_row = format_table(result).splitlines()[3:6]
    assert "0.225  -5.16e-04 ± 0.0065" in model_row

    def cell_ends(line):  # cells are separated by two spaces or more; words in a cell by one
        return [m.end() for m in re.finditer(r"\S+(?: \S+)*", line)]

    assert cell_ends(model_row)[1:] == cell_ends(real_row)[1:] == cell_ends(header)  # right-aligned columns


def test_evaluate_is_the_function_even_after_the_scoring_module_is_imported():
    """The function once shared its name with its module, which then shadowed it (`from tfgen.eval import
    evaluate` gave a module as soon as anything had imported `tfgen.eval.evaluate`)."""
    import tfgen.eval.scoring  # noqa: F401
    from tfgen.eval import evaluate as function

    assert callable(function) and function.__name__ == "evaluate"


def test_the_digits_evaluator_is_reliable_and_the_default_sample_count_is_the_test_splits(evaluator, capsys):
    from tfgen.eval.scoring import reliability_warning

    result = evaluate(NoiseModel(), evaluator=evaluator, kid_subsets=5, likelihood=False)
    assert result["n_samples"] == result["n_real_test"] == 1501
    assert result["reliable"] is True and result["unreliable_because"] == [] and reliability_warning(result) is None
    assert result["noise_fid"] > 100 * result["reference"]["fid"]
    assert f"uniform noise {result['noise_fid']:.3g}" in format_table(result)
    err = capsys.readouterr().err
    assert "samples: 1501 (the default for 1501 test images" in err and "sampling: 1501/1501" in err


def test_a_weak_evaluator_makes_the_scores_unreliable_with_one_warning_line(evaluator):
    import copy

    from tfgen.eval.scoring import reliability_warning

    weak = copy.copy(evaluator)
    weak.accuracy = 0.2  # 10 classes: chance is 10%, halfway to perfect 55%
    result = evaluate(NoiseModel(), n=100, evaluator=weak, kid_subsets=5, likelihood=False, verbose=0)
    assert result["reliable"] is False and len(result["unreliable_because"]) == 1
    assert "test accuracy 20.0% is near chance (10.0% for 10 classes" in result["unreliable_because"][0]
    line = reliability_warning(result)
    assert line.startswith("warning: this evaluator is too weak to rank models: ") and "\n" not in line
    json.dumps(result)


def test_each_sign_of_a_weak_evaluator_is_named():
    from types import SimpleNamespace

    from tfgen.eval.scoring import reliability

    x_test = np.random.default_rng(0).random((40, 4, 4, 1))  # mean-image RMSE about 0.29
    real = SimpleNamespace(test_features=np.zeros((40, 128)), x_test=x_test)
    weak_ae = SimpleNamespace(kind="autoencoder", labelled=False, meta={"test_rmse": 0.5})
    reasons = reliability(weak_ae, real, floor=1.0, noise=5.0)["unreliable_because"]
    assert [r.split(" ")[:2] for r in reasons] == [["only", "40"], ["its", "reconstruction"], ["uniform", "noise"]]
    good_ae = SimpleNamespace(kind="autoencoder", labelled=False, meta={"test_rmse": 0.3})
    real.test_features = np.zeros((128, 128))
    assert reliability(good_ae, real, floor=1.0, noise=10.0) == {"reliable": True, "unreliable_because": []}


def test_progress_lines_say_how_far_and_how_long_by_the_clock_given():
    import io

    from tfgen.eval.scoring import Progress, default_sample_count

    assert [default_sample_count(m) for m in (40, 1501, 10_000)] == [200, 1501, 2000]
    times, stream = iter([0.0, 20.0, 120.0]), io.StringIO()
    report = Progress(1, clock=lambda: next(times), stream=stream).counter("sampling", 1000)
    report(250)
    report(1000)
    assert stream.getvalue().splitlines() == ["sampling: 250/1000, 20 s, about 60 s left", "sampling: 1000/1000, 2 min"]


def test_cli_eval_of_a_folder_run_names_its_classes_in_the_report_and_eval_json(tmp_path, capsys, monkeypatch):
    """The wiring only (scores are tested above): the run's class names reach the table and eval.json."""
    from tfgen.cli import main
    from tfgen.eval import scoring

    run, names = tmp_path / "run", ["flags", "food", "smileys_and_emotion"]
    run.mkdir()
    tfgen.get_model("cgan", "tiny", num_classes=3, seed=0).save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": "cgan", "preset": "tiny", "dataset": "folder:emoji",
                                                 "class_names": names}))
    scores = dict(fid=1.0, kid=0.1, kid_std=0.01, precision=0.5, recall=0.5)
    fake = dict(model="cgan", dataset="folder:emoji", n_samples=30, n_real_test=30, evaluator_dataset="folder:emoji",
                evaluator_accuracy=0.9, conditional=True, conditional_accuracy=0.5,
                conditional_accuracy_per_class=[0.9, 0.19, 0.4], reference=dict(scores), **scores)
    monkeypatch.setattr(scoring, "evaluate", lambda model, **kwargs: dict(fake))
    assert main(["eval", str(run), "--n", "30"]) == 0
    assert "conditional accuracy per class: flags:0.9 food:0.19 smileys_and_emotion:0.4" in capsys.readouterr().out
    written = json.loads((run / "eval.json").read_text())
    assert written["class_names"] == names
    assert written["conditional_accuracy_by_class"] == {"flags": 0.9, "food": 0.19, "smileys_and_emotion": 0.4}
