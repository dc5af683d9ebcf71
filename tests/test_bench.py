"""The throughput measurement core (`tfgen.bench`) and `tfgen bench`, on tiny presets and a few steps."""

import json
import math

import pytest
import tensorflow as tf

from tfgen import bench
from tfgen.cli import main
from tfgen.registry import get_model_class


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    results = bench.run(["vae", "gan"], ["tiny"], steps=3, warmup=1, sample_n=4, sample_repeats=1, matmul_repeats=2,
                        profile_presets=("tiny",), command="pytest", log=lambda *_: None)
    json_path, md_path = bench.write_results(results, out)
    return json.loads(json_path.read_text()), md_path.read_text()


@pytest.fixture(scope="module")
def precision_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_precisions")
    results = bench.run(["vae"], ["tiny"], precisions=["float32", "mixed_bfloat16"], steps=2, warmup=1, sample_n=4,
                        sample_repeats=1, matmul_repeats=1, matmul_size=256, profile_presets=("tiny",),
                        command="pytest", log=lambda *_: None)
    json_path, md_path = bench.write_results(results, out)
    return json.loads(json_path.read_text()), md_path.read_text()


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_model_has_positive_finite_figures(results):
    data, _ = results
    assert _positive(data["matmul"]["before"]["gflops"]) and _positive(data["matmul"]["after"]["gflops"])
    assert set(data["models"]) == {"vae", "gan"}
    for name in ("vae", "gan"):
        e = data["models"][name]["tiny"]
        train = e["train"]
        for key in ("images_per_second", "step_seconds", "first_step_seconds", "gflop_per_step", "gflops",
                    "fraction_of_matmul_peak"):
            assert _positive(train[key]), (name, key, train[key])
        assert train["compile_seconds"] >= 0 and train["timed_steps"] == 3
        assert _positive(e["sample"]["images_per_second"]) and e["sample"]["n"] == 4
        assert 0.0 <= e["input"]["wait_fraction"] <= 1.0
        assert _positive(e["input"]["pipeline_alone_seconds_per_batch"])
        assert e["memory"]["peak_rss_increase_mb"] >= 0 and _positive(e["memory"]["process_peak_rss_mb"])
        assert e["batch_size"] == get_model_class(name).FIT_DEFAULTS["batch_size"] and _positive(e["parameters"])


def test_flops_count_the_backward_convolutions(results):
    flops = results[0]["models"]["gan"]["tiny"]["flops"]
    assert flops["method"] == "tf_flops_registry"
    by_type = flops["by_op_type"]
    for op in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul"):
        assert by_type.get(op, 0) > 0, op
    assert math.isclose(flops["total"], sum(by_type.values()))


def test_profile_and_markdown(results):
    data, md = results
    profile = data["models"]["vae"]["tiny"]["profile"]
    assert profile["op_types"] and _positive(profile["op_ms_per_step"]) and profile["summary"]
    assert abs(sum(t["share_of_op_time"] for t in profile["op_types"]) - 1.0) < 0.5
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and rows[0].startswith("| `vae` | tiny | 64 |")
    assert "`pytest`" in md and "GFLOP/s" in md
    assert set(profile["categories"]) == {"conv", "matmul", "cast", "norm", "optimiser", "other"}
    assert sum(profile["categories"].values()) == pytest.approx(1.0)


def test_one_precision_keeps_the_old_output(results):
    """The default, float32 alone: no per-precision rows or table (older readers of throughput.json work)."""
    data, md = results
    assert data["settings"]["precisions"] == ["float32"] and list(data["peaks"]) == ["float32"]
    assert all("by_precision" not in e for presets in data["models"].values() for e in presets.values())
    assert "| precision |" not in md and "Peaks in this run" not in md


def test_every_precision_gets_its_row_and_its_dtypes_peaks(precision_results):
    data, md = precision_results
    assert data["settings"]["precisions"] == ["float32", "mixed_bfloat16"]
    for dtype in ("float32", "bfloat16"):
        peak = data["peaks"][dtype]
        for kind in ("matmul", "conv"):
            assert peak[kind]["before"]["dtype"] == dtype and _positive(peak[kind]["after"]["gflops"]), (dtype, kind)
        assert _positive(peak["reference_gflops"]) and _positive(peak["conv_reference_gflops"])
    assert data["matmul"]["reference_gflops"] == data["peaks"]["float32"]["reference_gflops"]
    entry = data["models"]["vae"]["tiny"]
    rows = entry["by_precision"]
    assert list(rows) == ["float32", "mixed_bfloat16"]
    assert rows["float32"]["train"]["speedup_vs_float32"] == 1.0
    for precision, row in rows.items():
        train = row["train"]
        for key in ("images_per_second", "step_seconds", "gflops", "fraction_of_dtype_peak",
                    "fraction_of_float32_peak", "speedup_vs_float32"):
            assert _positive(train[key]), (precision, key)
        assert len(train["steady_step_seconds"]) == train["rounds"] * train["steps_per_round"]
        assert _positive(row["sample"]["images_per_second"]) and row["sample"]["n"] == 4
        categories = row["profile"]["categories"]
        assert sum(categories.values()) == pytest.approx(1.0) and row["profile"]["summary"], precision
    assert rows["mixed_bfloat16"]["profile"]["categories"]["cast"] > 0  # a mixed policy casts
    assert _positive(entry["train"]["images_per_second"]) and "input" in entry  # the old fields, for float32
    table = [line for line in md.splitlines() if line.startswith("| `vae` | tiny | ")]
    assert [line.split(" | ")[2] for line in table[1:]] == ["float32", "mixed_bfloat16"]
    assert "| `vae` | tiny | float32 | " in md and "| 1.00 |" in md and "cast " in md
    assert "bfloat16 matmul" in md and "3×3 conv" in md


def test_bench_precision_names_are_checked():
    from tfgen.precision import POLICIES, check_policies

    with pytest.raises(ValueError, match="float64"):
        check_policies(["float32", "float64"])
    assert check_policies(["mixed_bfloat16", "float32", "mixed_bfloat16"]) == ["mixed_bfloat16", "float32"]
    assert "auto" not in POLICIES and "mixed_float16" in POLICIES


@pytest.mark.parametrize("kind, name, category", [
    ("_MklNativeConv2DBackpropFilterWithBias", "gradient_tape/encoder_1/enc_conv1_1/convolution/Conv2DBackpropFilter",
     "conv"),
    ("_MklBatchMatMulV2", "gradient_tape/transformer_1/block0_1/attention_1/MatMul_1/MatMul_1", "matmul"),
    ("Cast", "gradient_tape/network_1/up1_0_norm1_1/Cast_1/Cast", "cast"),
    ("Mean", "network_1/up0_0_norm1_1/moments/mean", "norm"),
    ("RsqrtGrad", "gradient_tape/transformer_1/final_norm_1/RsqrtGrad", "norm"),
    ("_MklNativeFusedBatchNormV3", "model/bn/FusedBatchNormV3", "norm"),
    ("AssignSubVariableOp", "adam_3/AssignSubVariableOp_6", "optimiser"),
    ("UnsortedSegmentSum", "adam_4/Sum/input", "optimiser"),
    ("Sqrt", "sgd/Sqrt", "optimiser"),
    ("Mul", "gradient_tape/logistic_loss/mul/Mul", "other"),
    ("_MklSwish", "network_1/t_mlp1_1/mul_1", "other")])
def test_profiled_ops_are_filed_by_category(kind, name, category):
    """Real kernel types and op names from profiles of the models' steps (oneDNN on x86)."""
    from tfgen.bench.profile import op_category

    assert op_category(kind, name) == category


def test_flop_count_of_a_matmul_and_its_gradient():
    @tf.function
    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch(w)
            y = tf.reduce_sum(tf.matmul(x, w))
        return y, tape.gradient(y, w)  # like a training step: the loss and the weights' gradient

    concrete = step.get_concrete_function(tf.TensorSpec([8, 16]), tf.TensorSpec([16, 4]))
    by_type = bench.count_step_flops(concrete)["by_op_type"]
    assert by_type["MatMul"] == 2 * (2 * 8 * 16 * 4)  # forward x·w, backward xᵀ·dy

    @tf.function
    def attention(q, k):
        return tf.einsum("bqd,bkd->bqk", q, k)

    concrete = attention.get_concrete_function(tf.TensorSpec([2, 5, 3]), tf.TensorSpec([2, 7, 3]))
    assert bench.count_step_flops(concrete)["by_op_type"]["Einsum"] == 2 * 2 * 5 * 7 * 3


def test_flop_count_of_a_batched_dot_product_gradient():
    """TensorFlow's own registry counts this gradient (BatchMatMulV2 with adj_x) as 2·B·D² FLOPs; the
    gradient for x, which TensorFlow builds and then prunes, is not counted."""
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch(y)
            z = tf.reduce_sum(tf.matmul(x[:, None, :], y[:, :, None]))  # a dot product per row
        return z, tape.gradient(z, y)

    b, d = 4, 100
    concrete = step.get_concrete_function(tf.TensorSpec([b, d]), tf.TensorSpec([b, d]))
    assert bench.count_step_flops(concrete)["by_op_type"]["BatchMatMulV2"] == 2 * (2 * b * d)


def test_plan_selects_presets_and_rejects_unknown_names():
    assert ("diffusion", "large") in bench.plan(None, ["large"]) and ("vae", "large") not in bench.plan(None, ["large"])
    with pytest.raises(ValueError, match="nope"):
        bench.plan(["vae"], ["nope"])


def test_cli_bench_passes_its_options_to_the_core_and_writes_what_it_returns(results, tmp_path, capsys, monkeypatch):
    """`tfgen bench` is options → `bench.run` → files; the core itself is measured by the fixture above
    (running it again here would only repeat that measurement)."""
    calls = []

    def fake_run(models, presets, **kwargs):
        calls.append((models, presets, kwargs))
        return {**results[0], "command": kwargs["command"]}

    monkeypatch.setattr(bench, "run", fake_run)
    args = ["--quick", "--models", "vae", "--presets", "tiny", "--steps", "3", "--warmup", "1", "--sample-n", "4",
            "--precision", "float32,mixed_bfloat16"]
    assert main(["bench", *args, "--out", str(tmp_path)]) == 0
    [(models, presets, kwargs)] = calls
    assert (models, presets) == (["vae"], ["tiny"])
    assert (kwargs["steps"], kwargs["warmup"], kwargs["sample_n"]) == (3, 1, 4)
    assert kwargs["precisions"] == ["float32", "mixed_bfloat16"]
    data = json.loads((tmp_path / "throughput.json").read_text())
    assert data["command"].startswith("tfgen bench --models vae --presets tiny --steps 3 --warmup 1 --sample-n 4 "
                                      "--precision float32,mixed_bfloat16")
    assert data["command"].endswith("--quick")
    assert data["models"] == results[0]["models"]
    assert (tmp_path / "throughput.md").read_text().count("| `vae` | tiny |") == 1
    assert "wrote" in capsys.readouterr().out


def test_cli_bench_unknown_preset_is_a_one_line_error(tmp_path, capsys):
    assert main(["bench", "--models", "vae", "--presets", "nope", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_cli_bench_unknown_precision_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("measured despite a bad --precision"))
    assert main(["bench", "--precision", "float32,float64", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown precision 'float64'" in err and "mixed_bfloat16" in err


def test_options_shared_by_tfgen_bench_and_the_script():
    from argparse import Namespace

    def options(**given):
        args = {"models": None, "presets": None, "quick": False, "steps": None, "warmup": None, "sample_n": None}
        return bench.options_from_args(Namespace(**{**args, **given}))

    models, presets, settings = options()
    assert (models, presets, settings["steps"], settings["warmup"]) == (None, None, 20, 3)
    models, presets, settings = options(models="vae,gan,", quick=True, steps=7)
    assert models == ["vae", "gan"] and presets == ["default"] and settings["steps"] == 7 and settings["warmup"] == 2
    assert options(quick=True, presets="tiny")[1] == ["tiny"]
    assert settings["precisions"] == ["float32"]
    assert options(precision="float32,mixed_float16")[2]["precisions"] == ["float32", "mixed_float16"]


def test_load_average_is_rounded_and_none_where_the_os_has_none(monkeypatch):
    from tfgen.bench import hardware

    monkeypatch.setattr(hardware.os, "getloadavg", lambda: (1.23456, 0.5, 0.25))
    assert hardware.load_average() == 1.23 and hardware.machine()["load_average_1min"] == 1.23

    def unavailable():
        raise OSError("no load average")

    monkeypatch.setattr(hardware.os, "getloadavg", unavailable)
    assert hardware.load_average() is None


@pytest.mark.parametrize("kernel, op_type", [
    ("_MklNativeConv2DBackpropFilter", "Conv2DBackpropFilter"), ("_MklNativeConv2DBackpropInput", "Conv2DBackpropInput"),
    ("_MklNativeConv2D", "Conv2D"), ("_MklNativeFusedConv2D", "Conv2D"), ("_MklFusedConv2D", "Conv2D"),
    ("_MklConv2DWithBias", "Conv2D"), ("_FusedConv2D", "Conv2D"), ("_MklMatMul", "MatMul"),
    ("_MklNativeFusedMatMul", "MatMul"), ("_FusedMatMul", "MatMul"), ("_MklBatchMatMulV2", "BatchMatMulV2"),
    ("_MklNativeDepthwiseConv2dNative", "DepthwiseConv2dNative"), ("_MklEinsum", "Einsum"),
    ("_MklNativeFusedBatchNormV3", "FusedBatchNormV3"), ("_MklLayerNorm", "LayerNorm"), ("Relu", "Relu"),
    ("_Retval", "_Retval"), ("Conv2D", "Conv2D")])
def test_onednn_and_fused_kernels_are_filed_under_the_op_type_they_stand_for(kernel, op_type):
    from tfgen.bench.flops import DENSE_KERNELS, kernel_type

    assert kernel_type(kernel) == op_type
    assert (op_type in DENSE_KERNELS) == (kernel_type(kernel) in DENSE_KERNELS)


def test_profile_files_onednn_kernel_time_as_convolution_time(monkeypatch):
    """On an x86 CPU with oneDNN, the profiler names kernels `_MklNative…`: their time is convolution
    time, not "other ops" (the summary said 100% other while listing `_MklNativeConv2DBackpropFilter 24%`)."""
    from tfgen.bench import profile

    rows = [("_MklNativeConv2DBackpropFilter", 24.0), ("_MklNativeFusedConv2D", 30.0), ("_MklMatMul", 6.0),
            ("AddV2", 40.0)]
    table = {"cols": [{"id": "type"}, {"id": "operation"}, {"id": "total_self_time"}],
             "rows": [{"c": [{"v": kind}, {"v": f"op{i}"}, {"v": us}]} for i, (kind, us) in enumerate(rows)]}

    class Plugin:
        @staticmethod
        def xspace_to_tools_data(paths, tool, options):
            return [json.dumps([table])]

    import tensorflow.python.profiler.internal as internal
    monkeypatch.setattr(internal, "_pywrap_profiler_plugin", Plugin, raising=False)
    monkeypatch.setattr(tf.profiler.experimental, "start", lambda logdir: None)
    monkeypatch.setattr(tf.profiler.experimental, "stop", lambda: None)
    result = profile.profile_step(lambda batch: None, None, steps=1, peak_gflops=100.0)
    shares = {t["op_type"]: t["share_of_op_time"] for t in result["op_types"]}
    assert shares == pytest.approx({"Conv2D": 0.30, "Conv2DBackpropFilter": 0.24, "MatMul": 0.06, "AddV2": 0.40})
    assert result["share_of_op_time_outside_conv_and_matmul"] == pytest.approx(0.40)
    assert "ops other than convolutions and matmuls (elementwise, normalisation, optimiser) 40%" in result["summary"]
    assert result["categories"] == pytest.approx({"conv": 0.54, "matmul": 0.06, "cast": 0.0, "norm": 0.0,
                                                  "optimiser": 0.0, "other": 0.40})


def test_counting_flops_prints_no_tensorflow_v1_deprecation_line(capsys, caplog):
    from tfgen.bench.flops import count_step_flops, step_function

    dense = tf.keras.layers.Dense(4)
    _, concrete = step_function(lambda x: dense(tf.reshape(x, [2, -1])), 2, (3, 3, 1), labels=False)
    assert count_step_flops(concrete)["by_op_type"].get("MatMul", 0) > 0
    printed = capsys.readouterr().err + caplog.text
    assert "designed for TensorFlow v1" not in printed


def test_cli_bench_measures_the_users_own_data_at_its_shape_and_reports_measurements_only(tmp_path, capsys,
                                                                                           monkeypatch):
    import numpy as np
    from PIL import Image

    # The machine's peaks are measured by the fixtures above; here only the data and the models matter.
    peak = lambda dtype, *_: {kind: {"gflops": 100.0, "dtype": dtype} for kind in ("matmul", "conv")}
    monkeypatch.setattr(bench.suite, "peaks", peak)
    rng = np.random.default_rng(0)
    for name in ("flags", "food"):
        (tmp_path / "emoji" / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)).save(tmp_path / "emoji" / name / f"{i}.png")
    args = ["bench", "--models", "cgan", "--presets", "tiny", "--quick", "--steps", "2", "--warmup", "1",
            "--sample-n", "4", "--batch-size", "8", "--dataset", f"folder:{tmp_path / 'emoji'}", "--image-size", "16",
            "--channels", "3",
            "--out", str(tmp_path / "bench")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "bench" / "throughput.json").read_text())
    assert data["dataset"] == f"folder:{tmp_path / 'emoji'}" and data["data_options"] == {"image_size": [16, 16],
                                                                                         "channels": 3}
    assert "--batch-size 8 --dataset folder:" in data["command"] and "--image-size 16 --channels 3" in data["command"]
    entry = data["models"]["cgan"]["tiny"]
    assert entry["image_shape"] == [16, 16, 3] and entry["num_classes"] == 2 and entry["batch_size"] == 8
    assert _positive(entry["train"]["images_per_second"]) and _positive(entry["sample"]["images_per_second"])
    assert "(image_size (16, 16), channels 3)" in printed and "| `cgan` | tiny |" in printed
    # Measurements only: the project's own goal for its presets is not a verdict on the user's setup.
    assert "flop_goal" not in data and "Goal:" not in printed and "not met" not in printed and "≥ 60%" not in printed
