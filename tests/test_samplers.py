"""`network_calls_per_step`, the NFE count benchmarks/samplers.py compares samplers by, against the calls
each sampler's `step` really makes (first, middle and last step: multistep and final-step special cases)."""

import pytest
import tensorflow as tf

import tfgen


@pytest.mark.parametrize("family, name", [("diffusion", "ddim"), ("diffusion", "dpm++"), ("diffusion", "ddpm"),
                                          ("flow", "euler"), ("flow", "heun")])
def test_network_calls_per_step_counts_the_calls_of_every_step(family, name):
    model = tfgen.get_model(family, "tiny")
    sampler = model.make_sampler(name, tf.constant(0.0))
    grid = tf.constant(model.sampling_grid(name, 4))
    calls = []

    def predict(x, t):
        calls.append(float(t))
        return tf.zeros_like(x)

    x = tf.random.stateless_normal([1, 2, 2, 1], seed=[0, 0])
    state, z = sampler.initial_state(x), tf.zeros_like(x)
    for i in (3, 1, 0):  # the first step (no previous x̂_0), a middle one, the last (to the data)
        calls.clear()
        x, state = sampler.step(predict, grid, tf.constant(i), x, state, z)
        assert len(calls) == sampler.network_calls_per_step, (name, i)
    assert {"heun": 2}.get(name, 1) == sampler.network_calls_per_step
