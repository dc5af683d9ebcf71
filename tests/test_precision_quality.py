"""benchmarks/precision_quality.py: the verdict on hand-made numbers, its Markdown, its arguments and bookkeeping."""

import json
import math

import pytest

from benchmarks import precision_quality as pq


def test_within_noise_when_the_deviation_is_at_most_the_float32_spread():
    v = pq.verdict([10.0, 12.0], [11.5, 12.5])  # float32 mean 11, spread 2; bf16 mean 12
    assert (v["spread"], v["deviation"], v["tolerance"]) == (2.0, 1.0, 2.0) and v["within_noise"]
    assert pq.verdict([10.0, 12.0], [13.0, 13.0])["within_noise"]  # deviation 2 = spread: still within
    v = pq.verdict([10.0, 12.0], [14.0, 14.0])
    assert v["deviation"] == 3.0 and not v["within_noise"]
    assert not pq.verdict([12.0, 10.0], [8.0, 8.0])["within_noise"]  # better by more than the noise: also outside


def test_the_one_percent_floor_stands_in_for_a_tiny_spread():
    v = pq.verdict([100.0, 100.1], [100.8, 100.8])  # spread 0.1, floor 1.0005, deviation 0.75
    assert v["floor"] == pytest.approx(1.0005) and v["tolerance"] == pytest.approx(1.0005) and v["within_noise"]
    assert not pq.verdict([100.0, 100.1], [101.2, 101.2])["within_noise"]  # deviation 1.15 > 1.0005
    assert pq.verdict([100.0, 100.1], [101.2], floor=0.02)["within_noise"]


def test_a_verdict_needs_two_float32_seeds_and_finite_numbers():
    assert not pq.verdict([10.0, math.nan], [10.0])["within_noise"]
    assert not pq.verdict([10.0, 11.0], [math.inf])["within_noise"]
    with pytest.raises(ValueError, match="at least two float32 runs"):
        pq.verdict([10.0], [10.0])
    with pytest.raises(ValueError, match="at least two float32 runs"):
        pq.verdict([10.0, 11.0], [])


def _run(precision, seed, fid, nll=None, speed=100.0, **settings):
    scores = {"fid": fid, "kid": 0.002, "kid_std": 0.0005}
    if nll is not None:
        scores.update(nll_nats=nll, bits_per_dim=nll / 784 / math.log(2))
    return {"model": "pixelcnn", "precision": precision, "seed": seed, "preset": "default", "steps": 300,
            "batch_size": 32, "dataset": "mnist_bundled", "n_samples": 1000, "n_likelihood": 1000,
            "images_per_second": speed, "train_seconds": 96.0, "scores": scores, "command": "python pq",
            "machine": {"nproc": 2, "cpu": "CPU"}, "date": "2026-01-01 00:00", **settings}


def _results(*runs):
    return {"runs": {f"{r['model']} {r['precision']} seed {r['seed']}": r for r in runs}}


def test_markdown_has_a_table_per_model_and_a_verdict_per_precision():
    results = _results(
        _run("float32", 0, 10.0, 80.0), _run("float32", 1, 12.0, 80.1),
        _run("mixed_bfloat16", 0, 11.0, 80.3, speed=160.0), _run("mixed_bfloat16", 1, 12.0, 80.5, speed=160.0),
        _run("mixed_float16", 0, 16.0, 80.0), _run("mixed_float16", 1, 16.0, 80.0),
        *({"model": "vae", "precision": precision, "seed": 0, "preset": "tiny", "steps": 300,
           "dataset": "mnist_bundled", "error": "ValueError: boom", "command": "python pq",
           "machine": {"nproc": 2, "cpu": "CPU"}, "date": "2026-01-01 00:00"} for precision in ("float32", "mixed_bfloat16")),
    )
    text = pq.markdown(results)
    lines = text.splitlines()
    assert lines[0] == "**`pixelcnn`** (`default` preset, 300 steps of batch 32 on `mnist_bundled`)"
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| precision")]
    assert [r.split(" | ")[:2] for r in rows[:6]] == [["| float32", "0"], ["| float32", "1"],
                                                      ["| mixed_bfloat16", "0"], ["| mixed_bfloat16", "1"],
                                                      ["| mixed_float16", "0"], ["| mixed_float16", "1"]]
    assert rows[0] == "| float32 | 0 | 10 | 2.00 ± 0.50 | 80.0 (0.147) | 100 | 96.0 |"
    bf16 = next(line for line in lines if line.startswith("mixed_bfloat16 vs float32"))
    assert bf16.startswith("mixed_bfloat16 vs float32: within noise. FID: deviation 0.5 ≤ tolerance 2 ")
    assert "NLL: deviation 0.35 ≤ tolerance 0.8 (float32 spread 0.1, 1% floor 0.8)" in bf16  # the floor decides
    assert bf16.endswith("Training speed 1.60× float32.")
    fp16 = next(line for line in lines if line.startswith("mixed_float16 vs float32"))
    assert "**outside noise**" in fp16 and "FID: deviation 5 > tolerance 2" in fp16
    assert "| float32 | 0 | failed: ValueError: boom | | | | |" in lines
    assert "**`vae`** (`tiny` preset, 300 steps" in text
    assert "no verdict — needs two finished float32 runs and one mixed_bfloat16 run, has 0 and 0" in text
    assert "max(spread, 1% of the float32 mean)" in text and "deviation ≤ tolerance" in text
    assert "Command: `python pq`." in text and "Real training images" not in text
    results["reference"] = {"fid": 0.912}
    assert "Real training images score FID 0.912 against the test split" in pq.markdown(results)


def test_no_verdict_from_runs_that_differ_or_are_missing():
    fp32 = [_run("float32", 0, 10.0), _run("float32", 1, 12.0)]
    verdict = pq.model_verdict([*fp32, _run("mixed_bfloat16", 0, 11.0, steps=600)], "mixed_bfloat16")
    assert verdict == {"reason": "the runs differ in steps: run them again with one setting"}
    assert "has 1 and 1" in pq.model_verdict([fp32[0], _run("mixed_bfloat16", 0, 11.0)], "mixed_bfloat16")["reason"]
    # No NLL for the family (a diffusion model): the verdict rests on the FID alone.
    assert list(pq.model_verdict([*fp32, _run("mixed_bfloat16", 0, 11.0)], "mixed_bfloat16")["metrics"]) == ["FID"]


def test_per_model_values():
    models = ["diffusion", "pixelcnn"]
    assert pq.per_model("300", models, int, "--steps") == {"diffusion": 300, "pixelcnn": 300}
    assert pq.per_model("300,diffusion=600", models, int, "--steps") == {"diffusion": 600, "pixelcnn": 300}
    assert pq.per_model("diffusion=6, pixelcnn=3", models, int, "--steps") == {"diffusion": 6, "pixelcnn": 3}
    with pytest.raises(ValueError, match="gives no value for pixelcnn"):
        pq.per_model("diffusion=600", models, int, "--steps")
    with pytest.raises(ValueError, match="unknown model in --steps 'pixelcn'.*did you mean 'pixelcnn'"):
        pq.per_model("pixelcn=600", models, int, "--steps")


def test_arguments(capsys):
    args = pq.parse_args(["--models", "vae,diffusion", "--steps", "20,diffusion=30", "--preset", "tiny"])
    assert args.steps == {"vae": 20, "diffusion": 30} and args.preset == {"vae": "tiny", "diffusion": "tiny"}
    assert args.seeds == [0, 1] and args.precisions == ["float32", "mixed_bfloat16"] and args.ks == (1, 50)
    for argv, message in [
        (["--steps", "0"], "steps must be a positive integer"),
        (["--steps", "ten"], "expected a positive integer number of steps"),
        (["--steps", "5", "--seeds", "3,3"], "at least two different seeds"),
        (["--steps", "5", "--precisions", "mixed_bfloat16"], "must include float32"),
        (["--steps", "5", "--precisions", "float32,bf16"], "unknown precision 'bf16'"),
        (["--steps", "5", "--models", "vea"], "did you mean 'vae'"),
        (["--steps", "5", "--models", "vae", "--preset", "tinny"], "unknown preset 'tinny' for 'vae'"),
    ]:
        with pytest.raises(SystemExit):
            pq.parse_args(argv)
        assert message in capsys.readouterr().err, argv


def test_every_run_is_written_as_it_ends_and_merge_keeps_earlier_runs(tmp_path, monkeypatch):
    calls = []

    def train_and_score(model, *, seed, precision, steps, grid, **kwargs):
        calls.append((seed, precision))
        if (seed, precision) == (1, "mixed_bfloat16"):
            raise RuntimeError("diverged")
        if grid is not None:
            grid.parent.mkdir(parents=True, exist_ok=True)
            grid.write_bytes(b"png")
        entry = _run(precision, seed, 10.0 + seed, 80.0, steps=steps)
        return None, {k: entry[k] for k in ("images_per_second", "train_seconds", "scores", "batch_size")}, {"fid": 1}

    monkeypatch.setattr(pq.leaderboard, "train_and_score", train_and_score)
    monkeypatch.setattr("tfgen.eval.evaluator.get_evaluator", lambda *args, **kwargs: None)  # scoring is faked
    argv = ["--models", "vae", "--steps", "7", "--seeds", "0,1", "--out", str(tmp_path)]
    pq.run(pq.parse_args(argv))
    assert calls == [(0, "float32"), (0, "mixed_bfloat16"), (1, "float32"), (1, "mixed_bfloat16")]
    results = json.loads((tmp_path / "precision_quality.json").read_text())
    runs = results["runs"]
    assert sorted(runs) == ["vae float32 seed 0", "vae float32 seed 1", "vae mixed_bfloat16 seed 0",
                            "vae mixed_bfloat16 seed 1"]
    assert runs["vae mixed_bfloat16 seed 1"]["error"] == "RuntimeError: diverged"
    assert runs["vae mixed_bfloat16 seed 0"]["samples"] == "samples/precision_vae_mixed_bfloat16.png"
    assert "samples" not in runs["vae float32 seed 1"] and results["reference"] == {"fid": 1}
    assert runs["vae float32 seed 0"]["steps"] == 7 and "machine" in runs["vae float32 seed 0"]
    assert "mixed_bfloat16 vs float32: within noise" in (tmp_path / "precision_quality.md").read_text()

    pq.run(pq.parse_args([*argv, "--seeds", "1,2", "--precisions", "float32", "--merge"]))
    assert sorted(json.loads((tmp_path / "precision_quality.json").read_text())["runs"]) == [
        "vae float32 seed 0", "vae float32 seed 1", "vae float32 seed 2", "vae mixed_bfloat16 seed 0",
        "vae mixed_bfloat16 seed 1"]
    pq.run(pq.parse_args([*argv, "--precisions", "float32"]))  # without --merge: a new file
    assert len(json.loads((tmp_path / "precision_quality.json").read_text())["runs"]) == 2
