"""SavedModel export: every registered model's endpoints, loaded where tfgen cannot be imported.

One subprocess loads every model's export with plain TensorFlow (`tf.saved_model.load`,
`serving_default`, `keras.layers.TFSMLayer`) and two more run the real
`saved_model_cli`; all three start together, since TensorFlow's import is most of their cost.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from child_processes import HANG_SECONDS
from model_checks import N, SEED, make_inputs
from tfgen.cli import main
from tfgen.export import ExportError, export_model, read_metadata

MODELS = list(tfgen.list_models())
#: Endpoints whose loops run slowly eagerly: compared with the model's own seeded calls instead.
COMPILED = ("sample", "complete", "edit")
SAVED_MODEL_CLI = Path(sys.executable).with_name("saved_model_cli")

# Runs in a fresh interpreter where `import tfgen` fails.
LOADER = r"""
import sys
sys.modules["tfgen"] = None  # the venv has tfgen installed: make sure nothing can use it
import json
import numpy as np
import tensorflow as tf
import keras
try:
    import tfgen
    raise SystemExit("tfgen is importable in the loader process")
except ImportError:
    pass

cases = json.load(open(sys.argv[1]))
for name, case in cases.items():
    loaded = tf.saved_model.load(case["path"])
    inputs = np.load(case["inputs"])
    out = {"settings/" + k: v.numpy() for k, v in loaded.settings().items()}
    for endpoint, arity in case["endpoints"].items():
        args = [inputs[f"{endpoint}/{i}"] for i in range(arity)]
        result = getattr(loaded, endpoint)(*args)
        for i, value in enumerate(tf.nest.flatten(result)):
            out[f"{endpoint}/{i}"] = value.numpy()
        if endpoint == case["tfsm_endpoint"]:  # TFSMLayer takes one input; each layer reloads the export
            layer = keras.layers.TFSMLayer(case["path"], call_endpoint=endpoint)
            for i, value in enumerate(tf.nest.flatten(layer(args[0]))):
                out[f"tfsm/{endpoint}/{i}"] = np.asarray(value)
    if name in ("diffusion", "flow") and "labels" in case["sample_inputs"]:
        minus_one = np.full(len(inputs["sample/0"]), -1, np.int32)
        out["unconditional/0"] = loaded.sample(inputs["sample/0"], minus_one).numpy()
    serving = loaded.signatures["serving_default"]
    kwargs = {key: tf.constant(inputs[f"sample/{i}"]) for i, key in enumerate(case["sample_inputs"])}
    out["serving_default/0"] = serving(**kwargs)["output_0"].numpy()
    np.savez(case["outputs"], **out)
print("loaded", len(cases), "exports")
"""

BLOCKED_CLI = "import runpy, sys; sys.modules['tfgen'] = None; sys.argv = sys.argv[1:]; " \
              "runpy.run_path(sys.argv[0], run_name='__main__')"


def start_without_tfgen(root, *argv):
    """A fresh interpreter (-I: no PYTHONPATH, no cwd on sys.path) started in `root`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.Popen([sys.executable, "-I", *argv], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def start_saved_model_cli(root, cases):
    """`saved_model_cli show --all` on the VAE and `run` on the cVAE's serving_default (noise and labels)."""
    inputs = np.load(cases["cvae"]["inputs"])
    np.save(root / "cvae-noise.npy", inputs["sample/0"])
    np.save(root / "cvae-labels.npy", inputs["sample/1"])
    cli = lambda *argv: start_without_tfgen(root, "-c", BLOCKED_CLI, str(SAVED_MODEL_CLI), *argv)
    return {
        "show": cli("show", "--dir", cases["vae"]["path"], "--all"),
        "run": cli("run", "--dir", cases["cvae"]["path"], "--tag_set", "serve", "--signature_def", "serving_default",
                   "--inputs", f"noise={root / 'cvae-noise.npy'};labels={root / 'cvae-labels.npy'}",
                   "--outdir", str(root / "cli_out")),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each registered model (tiny preset) exported, its inputs, and its in-process outputs.

    `saved_model_cli` starts as soon as the VAE and cVAE exports exist: its TensorFlow
    import overlaps the other exports.
    """
    root = tmp_path_factory.mktemp("exports")
    cases, expected, procs = {}, {}, {}
    for name in sorted(MODELS, key=lambda m: m not in ("vae", "cvae")):
        model = tfgen.get_model(name, "tiny", seed=0)
        path = export_model(model, root / name, {"preset": "tiny"})
        metadata = read_metadata(path)
        endpoints = model.export_endpoints()
        endpoints.pop("settings", None)
        inputs, outputs = {}, {}
        for endpoint, (fn, _) in endpoints.items():
            args = make_inputs(model, metadata, endpoint)
            inputs.update({f"{endpoint}/{i}": a for i, a in enumerate(args)})
            if endpoint not in COMPILED:  # the samplers' loops run slowly eagerly: checked below
                result = fn(*(tf.constant(a) for a in args))
                outputs.update({f"{endpoint}/{i}": np.asarray(v) for i, v in enumerate(tf.nest.flatten(result))})
        sample_inputs = [spec["name"] for spec in metadata["endpoints"]["sample"]["inputs"]]
        labels = inputs[f"sample/{sample_inputs.index('labels')}"] if "labels" in sample_inputs else None
        # The export's `sample` must give the model's own seeded samples: the same function, not a lookalike.
        outputs["sample/0"] = np.asarray(model.sample(N, labels=labels, seed=SEED))
        # `complete` and `edit` give the model's own seeded completions and edits (n=1, default settings).
        if "complete" in endpoints:
            args = dict(zip(("images", "mask"), make_inputs(model, metadata, "complete")))
            outputs["complete/0"] = np.asarray(model.complete(args["images"], args["mask"], seed=SEED,
                                                              labels=labels)[:, 0])
        if "interpolate" in endpoints:  # the model's straight-line interpolation
            first, second, steps = make_inputs(model, metadata, "interpolate")[:3]
            outputs["interpolate/0"] = np.asarray(model.interpolate(first, second, steps=int(steps), labels=labels,
                                                                    method="linear"))
        if "edit" in endpoints:
            images = make_inputs(model, metadata, "edit")[0]
            outputs["edit/0"] = np.asarray(model.edit(images, 0.5, seed=SEED, labels=labels)[:, 0])
        if name in ("diffusion", "flow") and labels is not None:  # label -1: the unconditional model
            outputs["unconditional/0"] = np.asarray(model.sample(N, seed=SEED))
        np.savez(root / f"{name}-inputs.npz", **inputs)
        cases[name] = {
            "path": str(path), "inputs": str(root / f"{name}-inputs.npz"),
            "outputs": str(root / f"{name}-outputs.npz"),
            "endpoints": {e: len(metadata["endpoints"][e]["inputs"]) for e in endpoints},
            "sample_inputs": sample_inputs,
            # One one-input endpoint per model for TFSMLayer (`sample` when it has one input).
            "tfsm_endpoint": min((e for e in endpoints if len(metadata["endpoints"][e]["inputs"]) == 1),
                                 key=lambda e: e != "sample", default=None),
        }
        expected[name] = (model, metadata, outputs)
        if not procs and {"vae", "cvae"} <= set(cases):
            procs = start_saved_model_cli(root, cases)
    (root / "cases.json").write_text(json.dumps(cases))
    return root, cases, expected, procs


@pytest.fixture(scope="module")
def without_tfgen(exported):
    """The loader and `saved_model_cli` results, each from a process where tfgen cannot be imported."""
    root, cases, _, procs = exported
    procs = {**procs, "loader": start_without_tfgen(root, "-c", LOADER, str(root / "cases.json"))}
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=HANG_SECONDS)
        assert proc.returncode == 0, f"{key} failed:\n{out}\n{err[-3000:]}"
        results[key] = out
    return results


@pytest.mark.parametrize("name", MODELS)
def test_every_endpoint_matches_the_model_in_a_process_without_tfgen(name, exported, without_tfgen):
    _, cases, expected, _ = exported
    model, metadata, outputs = expected[name]
    loaded = dict(np.load(cases[name]["outputs"]))
    for key, want in outputs.items():
        np.testing.assert_allclose(loaded[key], want, rtol=1e-5, atol=1e-5, err_msg=f"{name} {key}")
        if key.startswith(f"{cases[name]['tfsm_endpoint']}/"):
            np.testing.assert_allclose(loaded[f"tfsm/{key}"], want, rtol=1e-5, atol=1e-5, err_msg=f"{name} TFSMLayer {key}")
    images = loaded["sample/0"]
    assert images.dtype == np.float32 and images.shape == (N, *model.image_shape)
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_allclose(loaded["serving_default/0"], images, atol=1e-6)
    # settings(): the hyperparameters and the export-time settings, as in metadata.json.
    for key, value in metadata["settings"].items():
        got = loaded[f"settings/{key}"].tolist()
        if isinstance(value, str):
            assert got.decode() == value, key
        elif isinstance(value, bool):
            assert got is value, key
        else:
            np.testing.assert_allclose(got, value, rtol=1e-6, err_msg=key)


def test_saved_model_cli_shows_and_runs_the_endpoints(exported, without_tfgen):
    root, cases, expected, _ = exported
    show = without_tfgen["show"]
    for text in ("signature_def['serving_default']", "signature_def['sample']", "signature_def['encode']",
                 "signature_def['decode']", "inputs['noise']", "outputs['output_0']"):
        assert text in show
    ran = np.load(root / "cli_out" / "output_0.npy")
    np.testing.assert_allclose(ran, expected["cvae"][2]["sample/0"], atol=1e-5)


def test_metadata_describes_the_export(exported):
    _, _, expected, _ = exported
    for name in MODELS:
        model, metadata, _ = expected[name]
        assert metadata["model"] == name and metadata["preset"] == "tiny"
        assert metadata["config"] == json.loads(json.dumps(model.get_config()))
        assert {"tfgen", "tensorflow", "keras"} <= set(metadata["versions"])
        assert metadata["default_endpoint"] == "sample" and "sample" in metadata["endpoints"]
        assert metadata["settings"]["image_shape"] == [28, 28, 1]
    assert set(expected["vae"][1]["endpoints"]) == {"sample", "encode", "decode", "complete", "interpolate"}
    for name in MODELS:  # which endpoints a family has: complete where it can, edit for the denoising families
        model, endpoints = expected[name][0], set(expected[name][1]["endpoints"])
        assert ("complete" in endpoints) == model.can_complete, name
        assert ("edit" in endpoints) == hasattr(model, "edit"), name
    assert [s["name"] for s in expected["cvae"][1]["endpoints"]["encode"]["inputs"]] == ["images", "labels"]
    assert list(expected["vae"][1]["endpoints"]["encode"]["outputs"]) == ["z_log_var", "z_mean"]
    for name in MODELS:  # the two label facts agree with the model and with each other
        model, settings = expected[name][0], expected[name][1]["settings"]
        assert settings["accepts_labels"] == model.accepts_labels and settings["requires_labels"] == model.requires_labels
        assert settings["accepts_labels"] or not settings["requires_labels"]
        assert settings.get("conditional", settings["requires_labels"]) == settings["requires_labels"]
    for name, sampler in (("diffusion", "ddim"), ("flow", "euler")):
        if name in expected:
            settings = expected[name][1]["settings"]
            assert settings["steps"] == 50 and settings["guidance"] == expected[name][0].guidance
            assert settings["sampler"] == sampler


def test_exported_labels_out_of_range_fail_inside_the_graph(exported):
    _, cases, _, _ = exported
    loaded = tf.saved_model.load(cases["cgan"]["path"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < num_classes"):
        loaded.sample(tf.zeros([2, 8]), tf.constant([1, 10]))


def test_a_failed_export_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    import tfgen.export as export

    first = tfgen.get_model("gan", "tiny", seed=0)
    path = export_model(first, tmp_path / "gan")
    noise = tf.random.stateless_normal([2, first.latent_dim], seed=[1, 0])
    # Keep the loaded object referenced while calling it: its variables die with it.
    previous = tf.saved_model.load(str(path))
    before = previous.sample(noise).numpy()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export, "write_json", crash)  # after the SavedModel is written, before the swap
    with pytest.raises(OSError, match="disk full"):
        export_model(tfgen.get_model("gan", "tiny", seed=1), path)
    monkeypatch.undo()
    reloaded = tf.saved_model.load(str(path))
    np.testing.assert_array_equal(reloaded.sample(noise).numpy(), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan"]  # no temporary directory left

    second = export_model(tfgen.get_model("gan", "tiny", seed=1), path)  # a successful export replaces it
    replaced = tf.saved_model.load(str(second))
    assert not np.allclose(replaced.sample(noise).numpy(), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan"]


def test_export_refuses_to_replace_a_directory_that_is_not_an_export(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not a SavedModel export"):
        export_model(tfgen.get_model("gan", "tiny"), tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_train_export_and_export_command(tmp_path, capsys, monkeypatch):
    run, saved = tmp_path / "runs" / "vae", tmp_path / "saved_models" / "vae"
    assert main(["train", "vae", "--preset", "tiny", "--epochs", "1", "--batch-size", "32", "--limit", "64",
                 "--out", str(run), "--verbose", "0", "--export", str(saved)]) == 0
    assert "SavedModel written to" in capsys.readouterr().out
    metadata = read_metadata(saved)
    assert metadata["dataset"] == "mnist_bundled" and metadata["source"]["file"].endswith("model.keras")

    # A checkpointed (unfinished) run exports from its checkpoint, with its evaluation scores, by
    # default into the run directory (never over an export elsewhere, e.g. one in the repository).
    (run / "model.keras").unlink()
    (run / "eval.json").write_text(json.dumps({"fid": 12.5}))
    monkeypatch.chdir(tmp_path / "runs")
    assert main(["export", "vae"]) == 0
    metadata = read_metadata(run / "saved_model")
    assert not (tmp_path / "runs" / "saved_models").exists()
    assert metadata["source"]["epoch"] == 1 and metadata["source"]["file"].endswith("last.keras")
    assert metadata["eval"] == {"fid": 12.5}


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfgen: error:") and "does not exist" in err and err.count("\n") == 1



def test_export_of_a_folder_run_carries_its_class_names_and_the_command_prints_no_tensorflow_log_line(tmp_path):
    import re

    run, names = tmp_path / "run", ["flags", "food", "smileys_and_emotion"]
    run.mkdir()
    tfgen.get_model("cgan", "tiny", num_classes=3, seed=0).save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": "cgan", "preset": "tiny", "class_names": names}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("TFGEN_TF_LOGS", None)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    # The command imports TensorFlow, which prints its C++ start-up lines (oneDNN, cudart_stub, cuInit)
    # before absl logging reads TF_CPP_MIN_LOG_LEVEL: tfgen's command line keeps them off stderr.
    done = subprocess.run([sys.executable, "-m", "tfgen", "export", str(run)], capture_output=True, text=True,
                          env=env, timeout=HANG_SECONDS)
    assert done.returncode == 0, done.stderr
    noise = [line for line in done.stderr.splitlines()
             if re.match(r"[IWEF]\d{4} |WARNING: All log messages before absl", line)
             or re.search(r"cudart_stub|cuInit|oneDNN", line)]
    assert noise == [], noise
    assert read_metadata(run / "saved_model")["class_names"] == names
    settings = tf.saved_model.load(str(run / "saved_model")).settings()
    assert [name.decode() for name in settings["class_names"].numpy()] == names
    with pytest.raises(ExportError, match="class_names must name the model's 3 classes, got 2"):
        export_model(tfgen.get_model("cgan", "tiny", num_classes=3), tmp_path / "x", class_names=names[:2])
