"""Training under `tf.distribute`: MirroredStrategy over two logical CPUs, and two-worker
MultiWorkerMirroredStrategy on localhost.

Both need processes of their own (devices are split, and collective ops configured, before
TensorFlow initialises), so one module fixture starts them all at once — the mirrored
checks of `distribute_checks.py` and the two workers — and the tests read what they
report. `distribute_checks.py` explains what the mirrored comparison compares and why.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import tfgen
from child_processes import HANG_SECONDS

CHECKS = Path(__file__).with_name("distribute_checks.py")
MODELS = list(tfgen.list_models())
TIMEOUT = HANG_SECONDS  # for all processes together: generous for a loaded machine; a hung collective fails
# Two workers, global batch 8 (4 per worker), 16 examples: 2 steps per epoch, 2 epochs.
WORKER_ARGS = ["train", "gan", "--preset", "tiny", "--strategy", "multiworker", "--epochs", "2", "--batch-size", "8",
               "--limit", "16", "--seed", "0", "--verbose", "2"]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start the mirrored checks and the two workers together; wait for all; return what they left."""
    root = tmp_path_factory.mktemp("distribute")
    # gRPC between the workers stays on 127.0.0.1 even where a proxy is configured.
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "NO_PROXY": no_proxy, "no_proxy": no_proxy}
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    run_dir = root / "run"  # the same --out for both workers, as on hosts sharing a file system
    procs, logs = {}, {}

    def start(key, args, **extra_env):
        logs[key] = root / f"{key}.log"
        with open(logs[key], "w") as log:
            procs[key] = subprocess.Popen([sys.executable, str(CHECKS), *args], stdout=log, stderr=subprocess.STDOUT,
                                          env={**env, **extra_env})

    start("mirrored", ["mirrored"])
    for i in range(2):
        (root / f"tmp{i}").mkdir()
        start(f"worker{i}", ["worker", str(root / f"weights{i}.npz"), *WORKER_ARGS, "--out", str(run_dir)],
              TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
              TMPDIR=str(root / f"tmp{i}"))
    deadline = time.monotonic() + TIMEOUT
    try:
        for proc in procs.values():
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = {key: logs[key].read_text() for key in procs}
    result = {"root": root, "run_dir": run_dir, "returncodes": {k: p.returncode for k, p in procs.items()}, "logs": out}
    lines = [line for line in out["mirrored"].splitlines() if line.startswith("RESULT ")]
    result["mirrored"] = json.loads(lines[-1][len("RESULT "):]) if lines else None
    return result


@pytest.fixture(scope="module")
def mirrored(runs):
    assert runs["mirrored"] is not None, f"mirrored checks failed:\n{runs['logs']['mirrored'][-4000:]}"
    return runs["mirrored"]


def test_replicas_draw_different_noise_and_new_noise_each_draw(mirrored):
    """The model's seed is folded with the replica id: without it both replicas would draw the same
    noise, i.e. train on half the noise they should. An int seed still gives the same draw everywhere."""
    first, second, seeded = (np.array(mirrored["noise"][k]) for k in ("first", "second", "seeded"))
    assert first.shape == (2, 3, 4)
    assert not np.allclose(first[0], first[1])
    assert not np.allclose(second[0], second[1])
    assert not np.allclose(first[0], second[0]) and not np.allclose(first[1], second[1])
    np.testing.assert_array_equal(seeded[0], seeded[1])


@pytest.mark.parametrize("case", [*MODELS, "gan_mixed_float16", "gan_regularised", "latent_diffusion_cached"])
def test_one_mirrored_step_gives_the_weights_of_one_single_device_step(mirrored, case):
    """Two replicas × 4 images against one device × 8 images, the same weights and noise before:
    every weight after one SGD step agrees to float rounding (a 2× gradient would differ by the
    whole update, see the next test), and so do the reported losses."""
    check = mirrored["models"][case]
    # (5e-4: flow's first step moves a weight by 1e-3 only: its target ε − x_0 is less correlated with
    # the noisy input than diffusion's ε, so the zero-initialised output layer's first gradient is smaller.)
    assert check["largest_update"] > 5e-4, f"{case}: the step changed nothing"
    assert check["largest_difference"] <= 1e-3 * check["largest_update"], check
    for name, (single, replicated) in check["losses"].items():
        assert replicated == pytest.approx(single, rel=1e-5), name
    if case.startswith(("gan", "cgan")):
        assert check["sync_batch_norm"] and all(check["sync_batch_norm"]), "per-replica batch statistics"


def test_the_comparison_fails_when_losses_are_not_divided_by_the_replica_count(mirrored):
    """The control: without `per_replica`'s division, gradients summed over two replicas are 2×, so
    the SGD update doubles and the mirrored weights differ from the single-device ones by one update."""
    check = mirrored["broken"]["vae_without_per_replica_division"]
    assert check["largest_difference"] == pytest.approx(check["largest_update"], rel=0.05)


def test_a_float16_overflow_on_one_replica_skips_the_step_on_every_replica(mirrored):
    check = mirrored["one_replica_overflows"]
    assert check["all_finite"]
    assert check["largest_change"] == 0.0
    assert check["loss_scales"] == [check["initial_scale"] / 2] * 2


def test_two_workers_train_in_step_and_only_the_chief_writes_the_run(runs):
    """`tfgen train --strategy multiworker` in two processes (TF_CONFIG on 127.0.0.1), the same
    command and the same --out: both finish with identical weights; worker 0, the chief, writes
    the run (a second writer would be refused by the run's lock); worker 1 writes only to a
    scratch directory that is gone when it exits."""
    codes, logs = runs["returncodes"], runs["logs"]
    for i in range(2):
        assert codes[f"worker{i}"] == 0, f"worker {i} failed:\n{logs[f'worker{i}'][-4000:]}"
    assert "run written to" in logs["worker0"]
    assert "worker done" in logs["worker1"] and "run written to" not in logs["worker1"]

    weights = [np.load(runs["root"] / f"weights{i}.npz") for i in range(2)]
    assert weights[0].files == weights[1].files and len(weights[0].files) > 10
    for key in weights[0].files:
        np.testing.assert_allclose(weights[0][key], weights[1][key], rtol=0, atol=1e-6, err_msg=key)

    run = runs["run_dir"]
    assert {"config.json", "history.csv", "model.keras", "checkpoints", "samples"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "config.json").read_text())["strategy"] == "multiworker"
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # counted from 1, like the sample grids
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d_loss", "g_loss", "val_d_loss"))
    model = keras.saving.load_model(run / "model.keras")
    assert int(model.optimizer.iterations) == 2 * 2  # 2 global steps per epoch (8 of 16 images each), 2 epochs
    for w, key in zip(model.get_weights(), weights[0].files):
        np.testing.assert_allclose(w, weights[0][key], rtol=0, atol=1e-6)
    for i in range(2):
        assert not any((runs["root"] / f"tmp{i}").iterdir()), f"worker {i} left files in its TMPDIR"
