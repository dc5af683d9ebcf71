"""Pixel Transformer: causal attention, a key/value cache that matches the full pass,
exact likelihoods, sampling from the model's distribution, and learning on real digits."""

import math

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from ar_checks import (
    assert_arguments_are_checked, assert_cache_matches_forward, assert_causal, assert_conditional_model_trains_and_round_trips,
    assert_compiled_functions_are_not_tracked, assert_log_prob_is_sum_of_conditionals, assert_metrics_in_nats_and_bits,
    assert_normalised, assert_samples_follow_the_model, binarised_digits,
    assert_colour_model_trains_samples_round_trips_and_exports, boundary_positions, causality_violations,
    colour_images,
)

NAME = "pixel_transformer"


def tiny(**overrides):
    return tfgen.get_model(NAME, "tiny", seed=0, **overrides)


def digit_like(shape=(28, 28, 1), levels=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, levels, (1, *shape)) / (levels - 1)).astype("float32")


@pytest.mark.parametrize("block_size", [0, 8])
def test_changing_pixel_i_never_changes_predictions_at_pixels_up_to_i(block_size):
    model = tiny(block_size=block_size)
    # Block boundaries (multiples of 8) are where local attention is easiest to get wrong.
    positions = boundary_positions(model.image_shape, extra=(7, 8, 9, 15, 16, 17, 400, 407, 408),
                                   rng=np.random.default_rng(0), n_random=12)
    assert_causal(model, digit_like()[0], positions)


def test_the_causality_check_catches_an_unshifted_input():
    # The classic bug: feeding pixel t (not t − 1) at position t lets the model see its target.
    model = tiny()

    def leaky_logits(images):
        q = tf.reshape(model.to_levels(images), [len(images), -1])
        return model.network(q)

    before, _ = causality_violations(leaky_logits, digit_like()[0], [0, 100, 500])
    assert np.all(before > 0)


# Colour: 192 sub-pixels, each a position (R, G, B of a pixel consecutive); 4 levels per channel.
COLOUR = dict(image_shape=(8, 8, 3), levels=4)


@pytest.mark.parametrize("block_size", [0, 8, None])  # None: two image rows, 48 positions here
def test_each_colour_sub_pixel_sees_exactly_the_sub_pixels_before_it(block_size):
    model = tiny(**COLOUR, block_size=block_size)
    assert_causal(model, colour_images(model.image_shape, 4, n=1)[0], list(range(model.num_dims)), levels=4)


def test_block_size_none_is_two_image_rows_and_colour_defaults_to_16_levels():
    assert tfgen.get_model(NAME, "default").block_size == 56  # 28×28×1: the grayscale preset's value
    colour = tfgen.get_model(NAME, "default", image_shape=(32, 32, 3))
    assert colour.block_size == 2 * 32 * 3 and colour.levels == 16 and tiny().levels == 2


@pytest.mark.parametrize("overrides", [dict(block_size=0), dict(block_size=8), dict(levels=4, conditional=True),
                                       dict(COLOUR, block_size=8), dict(COLOUR, conditional=True)])
def test_cached_sampler_step_gives_the_full_pass_logits(overrides):
    model = tiny(**overrides)
    images = np.concatenate([digit_like(model.image_shape, levels=model.levels, seed=s) for s in range(2)])
    labels = np.array([3, 7], np.int32) if model.conditional else None
    assert_cache_matches_forward(model, images, labels)
    assert_log_prob_is_sum_of_conditionals(model, images, labels)


def test_loss_is_nats_per_image_and_bits_per_dim():
    model = tiny()
    images = np.concatenate([digit_like(seed=s) for s in range(3)])
    assert_metrics_in_nats_and_bits(model, images)
    # 784 · ln 2 nats per image is exactly 1 bit per dimension.
    from tfgen.eval.likelihood import bits_per_dim
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


@pytest.mark.parametrize("shape, levels", [((2, 3, 1), 2), ((2, 2, 1), 3), ((1, 2, 3), 2), ((1, 1, 3), 3)])
def test_likelihood_is_exact_and_the_sampler_draws_from_it(shape, levels):
    model = tfgen.get_model(NAME, "tiny", seed=1, image_shape=shape, levels=levels)
    log_p = assert_normalised(model)
    assert_samples_follow_the_model(model, log_p)


def test_sampling_options():
    model = tiny(levels=4)
    images = np.asarray(model.sample(3, seed=1, temperature=0.7))
    assert set(np.unique(images * 3).round(4)) <= {0.0, 1.0, 2.0, 3.0}
    # top_k = 1 is greedy decoding: the seed no longer matters.
    np.testing.assert_array_equal(model.sample(2, top_k=1, seed=1), model.sample(2, top_k=1, seed=2))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        model.sample(2, top_k=0)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, labels=[1, 2])


def test_class_token_conditions_the_model_and_labels_are_checked():
    model = tiny(conditional=True)
    assert model.conditional
    image = np.repeat(digit_like(), 2, axis=0)
    log_p = np.asarray(model.log_prob(image, np.array([0, 9])))
    assert log_p[0] != log_p[1]
    samples = np.asarray(model.sample(2, labels=5, seed=0))
    assert samples.shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.sample(2, labels=[1, 10])
    with pytest.raises(ValueError, match="conditional"):
        model.log_prob(image)


def test_images_labels_and_counts_are_checked():
    assert_arguments_are_checked(tfgen.get_model(NAME, "tiny", seed=0, conditional=True))


def test_compiled_functions_are_not_tracked_by_keras():
    assert_compiled_functions_are_not_tracked(tfgen.get_model(NAME, "tiny", seed=0, image_shape=(2, 3, 1),
                                                              conditional=True))


def test_out_of_range_labels_in_a_batch_fail_the_step():
    # Label −1 would read class token levels − 1, which is a pixel token: it must fail, not train.
    # (`unpack` checks it for every step; the validation step is the cheaper one to trace.)
    model = tiny(conditional=True)
    model.default_compile()
    bad = tf.data.Dataset.from_tensor_slices((np.zeros((2, 28, 28, 1), "float32"), np.array([3, -1]))).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be >= 0"):
        model.evaluate(bad, verbose=0)


def test_data_variant_and_dynamic_binarization():
    assert "fixed threshold 0.5" in tiny().data_variant
    dynamic = tiny(dynamic_binarization=True)
    assert "Bernoulli" in dynamic.data_variant
    gray = np.full((2, 28, 28, 1), 0.5, np.float32)
    # A fresh binarisation each step (from the model's seed generator), never the same twice.
    a, b = dynamic._training_targets(gray), dynamic._training_targets(gray)
    assert not np.array_equal(a, b) and 0.4 < float(tf.reduce_mean(tf.cast(a, tf.float32))) < 0.6
    assert "256 levels" in tiny(levels=256).data_variant
    with pytest.raises(ValueError, match="levels=2"):
        tiny(levels=4, dynamic_binarization=True)


def test_conditional_model_trains_and_round_trips(random_batches, tmp_path):
    assert_conditional_model_trains_and_round_trips(NAME, random_batches, tmp_path)


def test_colour_32x32_trains_samples_round_trips_and_exports(tmp_path):
    # 3,072 positions: local attention over two image rows (the tiny preset's full attention costs 4× more here).
    assert_colour_model_trains_samples_round_trips_and_exports(NAME, tmp_path, block_size=None)


@pytest.mark.learning
def test_held_out_nll_falls_far_below_uniform(digits):
    # 32 steps of 32 measured 140 and 142 nats (seeds 0, 1; 64 steps are not needed).
    train, test = binarised_digits(digits, n_train=1024, n_test=512)
    model = tfgen.get_model(NAME, "default", seed=0, dim=32, num_layers=2, num_heads=2, block_size=56)
    model.default_compile()
    model.fit(train.shuffle(1024, seed=0).batch(32), epochs=1, verbose=0)
    nll = model.evaluate(test.batch(128), verbose=0, return_dict=True)["loss"]
    uniform = 784 * math.log(2)  # 543 nats: every pixel a coin flip
    # Independent per-pixel Bernoullis already reach ~206 nats on binarised MNIST;
    # below 160 the model uses the pixels it has seen.
    assert nll < 160, f"held-out NLL {nll:.1f} nats (uniform {uniform:.0f})"
