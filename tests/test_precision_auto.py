"""`--precision auto` (the default): mixed_bfloat16 for the presets listed in their class's `AUTO_BFLOAT16`
on devices that compute bfloat16 natively, float32 otherwise. The device check (`tfgen.precision.native_bfloat16`)
is mocked both ways; the choice is kept in config.json, by `--resume` (never chosen again) and by a reload."""

import json

import keras
import pytest
import tensorflow as tf

import tfgen
from tfgen import cli, precision
from tfgen.export import export_run
from tfgen.precision import POLICIES, cpu_bfloat16_flags, native_bfloat16, resolve_precision
from tfgen.registry import get_model_class

FLAGS = "fpu vme sse sse2 avx2 avx512f avx512bw"
# Two processors, as /proc/cpuinfo lists them (only the lines that matter here).
CPUINFO = "processor\t: 0\nflags\t\t: {0}\n\nprocessor\t: 1\nflags\t\t: {1}\n"
TINY_RUN = dict(preset="tiny", epochs=1, batch_size=16, limit=32, sample_every=1)


@pytest.fixture(autouse=True)
def float32_policy():
    """The global dtype policy is process-wide: every test starts and ends with float32."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def machine(monkeypatch, found):
    """Pretend the devices do (found = what was found) or do not (None) compute bfloat16 natively."""
    calls = []
    monkeypatch.setattr(precision, "native_bfloat16", lambda: calls.append(found) or found)
    return calls


def test_cpuinfo_flags_of_every_processor():
    assert cpu_bfloat16_flags(CPUINFO.format(FLAGS, FLAGS)) == []
    both = f"{FLAGS} amx_bf16 avx512_bf16 amx_tile"
    assert cpu_bfloat16_flags(CPUINFO.format(both, both)) == ["avx512_bf16", "amx_bf16"]
    assert cpu_bfloat16_flags(CPUINFO.format(f"{FLAGS} avx512_bf16", f"{FLAGS} avx512_bf16")) == ["avx512_bf16"]
    # A flag only some processors have is not one training can count on.
    assert cpu_bfloat16_flags(CPUINFO.format(f"{FLAGS} avx512_bf16", FLAGS)) == []
    assert cpu_bfloat16_flags("flags\t\t: avx512_bf16x\n") == []  # whole words only
    assert cpu_bfloat16_flags("") == [] and cpu_bfloat16_flags("Features\t: fp asimd bf16\n") == []


def test_native_bfloat16_reads_the_cpu_flags_on_linux_without_gpus(tmp_path, monkeypatch):
    assert not tf.config.list_physical_devices("GPU")  # this test is about the CPU branch
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    monkeypatch.setattr(precision.sys, "platform", "linux")
    assert native_bfloat16() is None  # no /proc/cpuinfo: not known, so not native
    cpuinfo.write_text(CPUINFO.format(f"{FLAGS} avx512_bf16", f"{FLAGS} avx512_bf16"))
    assert native_bfloat16() == "CPU avx512_bf16"
    cpuinfo.write_text(CPUINFO.format(FLAGS, FLAGS))
    assert native_bfloat16() is None
    cpuinfo.write_text(CPUINFO.format(f"{FLAGS} avx512_bf16", f"{FLAGS} avx512_bf16"))
    monkeypatch.setattr(precision.sys, "platform", "darwin")
    assert native_bfloat16() is None


@pytest.mark.parametrize("capabilities, expected", [
    ([(8, 0)], "GPU compute capability 8.0"),
    ([(8, 6), (9, 0)], "GPU compute capability 8.6, 9.0"),
    ([(8, 0), (7, 5)], None),  # training runs on every GPU: one without bfloat16 units slows them all
    ([None], None),
])
def test_native_bfloat16_with_gpus_needs_compute_capability_8_on_every_one(capabilities, expected, tmp_path,
                                                                         monkeypatch):
    gpus = [f"gpu{i}" for i in range(len(capabilities))]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    details = {gpu: {} if c is None else {"compute_capability": c} for gpu, c in zip(gpus, capabilities)}
    monkeypatch.setattr(tf.config.experimental, "get_device_details", details.__getitem__)
    cpuinfo = tmp_path / "cpuinfo"  # the CPU's flags do not count when training runs on GPUs
    cpuinfo.write_text(CPUINFO.format("avx512_bf16", "avx512_bf16"))
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    assert native_bfloat16() == expected


@pytest.mark.parametrize("name", ["pixelcnn", "vae"])
def test_auto_picks_bfloat16_for_the_presets_that_gain_only_where_it_is_native(name, monkeypatch):
    machine(monkeypatch, "CPU avx512_bf16")
    policy, reason = resolve_precision("auto", get_model_class(name), "default")
    assert policy == "mixed_bfloat16"
    assert reason == (f"auto: {name} (default preset) trains faster in mixed_bfloat16 and this machine computes "
                      "bfloat16 natively (CPU avx512_bf16)")
    machine(monkeypatch, None)
    policy, reason = resolve_precision("auto", get_model_class(name), "default")
    assert policy == "float32" and reason.startswith("auto: float32 — this machine does not compute bfloat16")


def test_auto_keeps_float32_for_presets_not_measured_faster_even_where_bfloat16_is_native(monkeypatch):
    calls = machine(monkeypatch, "CPU avx512_bf16")
    listed = {(name, preset) for name, presets in tfgen.list_models().items() for preset in presets
              if preset in get_model_class(name).AUTO_BFLOAT16}
    assert listed == {("pixelcnn", "default"), ("vae", "default")}
    for name, presets in tfgen.list_models().items():
        for preset in presets:
            if (name, preset) in listed:
                continue
            assert resolve_precision("auto", get_model_class(name), preset) == (
                "float32", f"auto: float32 — {name} ({preset} preset) is not one measured faster at equal quality "
                           "in mixed_bfloat16 (README, training speed)")
    assert calls == []  # no device check needed


@pytest.mark.parametrize("found", ["CPU avx512_bf16", None])
def test_a_policy_asked_for_by_name_is_used_as_it_is(found, monkeypatch):
    machine(monkeypatch, found)
    for name in ("vae", "diffusion"):
        for policy in POLICIES:
            assert resolve_precision(policy, get_model_class(name)) == (policy, "asked for")
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        resolve_precision("bf16", get_model_class("vae"))
    with pytest.raises(ValueError, match="unknown precision 'auto'"):  # a choice, not a policy to build under
        with precision.dtype_policy("auto"):
            pass


def test_the_command_line_defaults_to_auto():
    args = cli.build_parser().parse_args(["train", "vae"])
    assert args.precision == "auto"
    assert cli.build_parser().parse_args(["train", "vae", "--precision", "mixed_bfloat16"]).precision \
        == "mixed_bfloat16"


def bfloat16_compute(model) -> bool:
    return model.dtype_policy.name == "mixed_bfloat16" and "bfloat16" in {
        layer.compute_dtype for layer in model._flatten_layers()}


def test_auto_choice_is_kept_through_resume_reload_and_export_on_another_machine(tmp_path, monkeypatch, capsys):
    """Trained where bfloat16 is native; resumed, reloaded and exported where it is not: still mixed_bfloat16."""
    run = tmp_path / "run"
    machine(monkeypatch, "CPU avx512_bf16")
    # The mechanism on a network small enough for a test: the tiny preset listed as if it had been measured.
    monkeypatch.setattr(get_model_class("pixelcnn"), "AUTO_BFLOAT16", ("tiny",))
    tfgen.train("pixelcnn", out=run, verbose=2, **TINY_RUN)
    reason = "auto: pixelcnn (tiny preset) trains faster in mixed_bfloat16 and this machine computes bfloat16 " \
             "natively (CPU avx512_bf16)"
    assert f"precision: mixed_bfloat16 ({reason})" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert (config["precision"], config["precision_requested"], config["precision_reason"]) == (
        "mixed_bfloat16", "auto", reason)
    assert config["config"]["dtype"]["config"]["name"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"

    calls = machine(monkeypatch, None)
    # --precision cannot be changed on resume (auto is the default, so not giving it is the same).
    assert cli.main(["train", "--resume", str(run), "--precision", "float32", "--verbose", "0"]) == 2
    assert "--precision" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--verbose", "2"]) == 0
    assert f"precision: mixed_bfloat16 (the run's own; {reason})" in capsys.readouterr().err
    assert calls == []  # never chosen again
    assert json.loads((run / "config.json").read_text())["precision"] == "mixed_bfloat16"
    assert bfloat16_compute(tfgen.load_run(run))
    assert bfloat16_compute(keras.saving.load_model(run / "model.keras"))
    assert keras.config.dtype_policy().name == "float32"
    # The SavedModel export samples in bfloat16 too (float32 images out).
    exported = tf.saved_model.load(str(export_run(run)))
    assert "DT_BFLOAT16" in str(exported.sample.concrete_functions[0].graph.as_graph_def())
    images = exported.sample(tf.constant(2), tf.constant(0, tf.int64))
    assert images.dtype == tf.float32 and images.shape == (2, 28, 28, 1)


def test_auto_run_where_bfloat16_is_not_native_trains_in_float32(tmp_path, monkeypatch):
    machine(monkeypatch, None)
    monkeypatch.setattr(get_model_class("pixelcnn"), "AUTO_BFLOAT16", ("tiny",))  # listed, but not native here
    run = tfgen.train("pixelcnn", out=tmp_path / "run", verbose=0, **TINY_RUN)
    config = json.loads((run / "config.json").read_text())
    assert (config["precision"], config["precision_requested"]) == ("float32", "auto")
    assert config["precision_reason"].startswith("auto: float32 — this machine does not compute bfloat16 natively")
    model = tfgen.load_run(run)
    assert model.dtype_policy.name == "float32"
    assert {layer.compute_dtype for layer in model._flatten_layers()} == {"float32"}
    exported = tf.saved_model.load(str(export_run(run)))
    assert "DT_BFLOAT16" not in str(exported.sample.concrete_functions[0].graph.as_graph_def())


def test_a_run_from_before_auto_resumes_saying_its_precision_was_asked_for(capsys):
    """config.json files written before `--precision auto` have neither precision_requested nor a reason."""
    from tfgen.training import _announce_precision

    _announce_precision({"precision": "mixed_float16"}, "auto", resumed=True)
    assert capsys.readouterr().err == "precision: mixed_float16 (the run's own; asked for)\n"
    _announce_precision({"precision": "float32"}, 0)  # verbose 0: silent, like Keras' progress
    assert capsys.readouterr().err == ""
