"""The leaderboard's Markdown and README rendering (pure text; no training)."""

from benchmarks import leaderboard, render_readme, trained_runs
from benchmarks import sampling_results as sampling


def test_render_replaces_only_blocks_with_results(tmp_path):
    (tmp_path / "leaderboard.md").write_text("| a | b |\n")
    text = ("intro\n<!-- BEGIN leaderboard -->\nold table\n<!-- END leaderboard -->\nmiddle\n"
            "<!-- BEGIN speed -->\nkept\n<!-- END speed -->\n")
    new, filled, missing = render_readme.render(text, tmp_path)
    assert new == ("intro\n<!-- BEGIN leaderboard -->\n| a | b |\n<!-- END leaderboard -->\nmiddle\n"
                   "<!-- BEGIN speed -->\nkept\n<!-- END speed -->\n")
    assert (filled, missing) == (["leaderboard"], ["speed"])
    assert render_readme.render(new, tmp_path)[0] == new  # idempotent

    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert render_readme.main(["--readme", str(readme), "--results", str(tmp_path), "--check"]) == 1
    assert render_readme.main(["--readme", str(readme), "--results", str(tmp_path)]) == 0
    assert readme.read_text() == new
    assert render_readme.main(["--readme", str(readme), "--results", str(tmp_path), "--check"]) == 0


def test_leaderboard_markdown_orders_by_fid_and_shows_the_floor():
    scores = dict(fid=5.0, kid=0.004, kid_std=0.001, classifier_score=9.1, precision=0.8, recall=0.7)
    board = {
        "preset": "default", "budget_minutes_per_model": 2, "dataset": "mnist_bundled", "n_samples": 2000,
        "evaluator": {"test_accuracy": 0.985}, "date": "2026-01-01 00:00", "command": "python x",
        "machine": {"nproc": 2, "cpu": "CPU"}, "versions": {"tfgen": "0.1.0", "tensorflow": "2.21"},
        "reference": {**scores, "fid": 0.5, "conditional_accuracy": 0.985},
        "models": {
            "vae": {"params": 1e5, "train_seconds": 120, "epochs": 9.5, "images_per_second": 812.4, "scores": {
                **scores, "fid": 20.0, "iwae_nats": 90.0, "iwae_k": 50, "bits_per_dim": 0.165,
                "data_variant": "binarised (threshold 0.5)"}},
            "cgan": {"params": 2e5, "train_seconds": 120, "epochs": 3.0,
                     "scores": {**scores, "conditional_accuracy": 0.9}},
            "broken": {"error": "ValueError: boom"},
        },
    }
    md = leaderboard.markdown(board)
    lines = md.splitlines()
    assert lines[2].startswith("| cgan ") and lines[3].startswith("| vae ") and "failed" in lines[4]
    assert "90.0 (0.165) (IWAE k=50, bound)" in lines[3] and "binarised (threshold 0.5)" in lines[3]
    assert "120 s, 9.5 ep, 812 img/s" in lines[3] and "120 s, 3.0 ep |" in lines[2]  # older boards: no speed
    assert "0.900" in lines[2] and lines[5].startswith("| *real data (train vs test)* | | | 0.5 ")
    assert "not Inception FID" in md and "python x" in md and "98.50%" in md
    assert "`default` preset, trained for 2 min of wall-clock time on `mnist_bundled`" in md  # as before --steps

    board.update(budget_minutes_per_model=None, steps_per_model=300, precision="mixed_bfloat16")
    assert "trained for 300 optimiser steps in `mixed_bfloat16` precision on `mnist_bundled`" in leaderboard.markdown(board)


def test_sampling_results_merge_keeps_other_keys_and_renders_the_speedups(tmp_path):
    timing = lambda seconds, **kw: {"seconds": seconds, "images_per_second": 64 / seconds, **kw}
    diffusion = {
        "images": 64, "command": "python d", "date": "2026-01-01",
        "a_ddpm_1000_predict_loop": timing(400.0, extrapolated=True), "b_ddim_50_compiled": timing(4.0),
        "c_ddim_50_predict_loop": timing(16.0), "speedup_a_over_b": 100.0,
        "fid": {"samples": 512, "a_ddpm_1000": 10.0, "b_ddim_50": 10.5, "real_vs_real": 1.0},
    }
    ar = {"command": "python a", "date": "2026-01-01", "pixelcnn": {
        "images": 16, "a_predict_loop": timing(300.0, extrapolated=True), "b_compiled_sampler": timing(10.0),
        "c_compiled_forward_loop": timing(100.0, extrapolated=True), "speedup_a_over_b": 30.0,
        "goal_speedup_a_over_b": 20.0}}
    path = tmp_path / "sampling.json"
    sampling.merge_results(path, "diffusion", diffusion)
    sampling.merge_results(path, "autoregressive", ar)
    md = (tmp_path / "sampling.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `diffusion` | 64 | DDPM 1000 steps: 400 s\\*") and "| 100× | ≥ 20× |" in rows[0]
    assert rows[1].startswith("| `pixelcnn` | 16 |") and "| 30× | ≥ 20× |" in rows[1]
    assert "DDPM-1000 10.00, DDIM-50 10.50 (+5%" in md and "python d" in md and "python a" in md


def test_trained_runs_markdown_names_the_likelihood_data_and_the_commands():
    scores = dict(fid=5.0, classifier_score=9.1, precision=0.8, recall=0.7)
    run = dict(model="pixelcnn", preset="default", dataset="mnist_bundled", params=160_000, epochs=26,
               train_hours=0.8, likelihood_images=1500, samples="samples/trained_pcnn.png", command="python b x",
               train_command="tfgen train pixelcnn --epochs 26")
    results = {
        "n_samples": 1000, "seed": 0, "date": "2026-01-01 00:00",
        "machine": {"cpus": 2, "cpu": "CPU", "tensorflow": "2.21"},
        "runs": {
            "pcnn": {**run, "dynamic_binarization": True, "median_epoch_minutes": 1.8,
                     "scores": {**scores, "nll_nats": 64.04, "bits_per_dim": 0.1178, "nll_nats_stochastic": 85.26,
                                "data_variant": "binarised (threshold 0.5)"}},
            "gan": {**run, "model": "gan", "command": "python b y", "likelihood_images": None, "scores": scores},
        },
    }
    lines = trained_runs.markdown(results).splitlines()
    assert lines[2].startswith("| gan | gan (default) | 0.16M | threshold 0.5 | 26 ep, 0.8 h | – | – | 5 |")
    assert "| Bernoulli draws, new each step | 26 ep, 0.8 h (median epoch 2 min) | 64.0 (0.118) | 85.3 | 5 |" in lines[3]
    assert "`benchmarks/results/samples/trained_pcnn.png`" in lines[3]
    assert "`python b x` ; `python b y`" in lines[-1] and "1000 samples" in lines[-1]
    assert "on 1500 test images" in lines[-1] and "seed 0" in lines[-1]
    assert "pcnn: `tfgen train pixelcnn --epochs 26`" in lines[-1]


def test_trained_runs_train_command_repeats_what_differs_from_the_preset():
    import tfgen

    config = tfgen.get_model("pixelcnn", "default", seed=3).get_config()
    assert trained_runs.set_options("pixelcnn", "default", config) == []
    config.update(dynamic_binarization=True, num_layers=12)
    assert trained_runs.set_options("pixelcnn", "default", config) == [("dynamic_binarization", "true"),
                                                                       ("num_layers", "12")]
    # levels and block_size chosen from the image shape: only an explicit other value is an option.
    colour = tfgen.get_model("pixel_transformer", "default", image_shape=(32, 32, 3)).get_config()
    shape = ("image_shape", "[32,32,3]")
    assert trained_runs.set_options("pixel_transformer", "default", colour) == [shape]
    colour.update(levels=256)
    assert set(trained_runs.set_options("pixel_transformer", "default", colour)) == {shape, ("levels", "256")}
    diffusion = tfgen.get_model("diffusion", "default", channel_mults=(1, 2), schedule="linear").get_config()
    assert set(trained_runs.set_options("diffusion", "default", diffusion)) == {("schedule", "linear"),
                                                                               ("channel_mults", "[1,2]")}
