"""Gated PixelCNN: causal masks with no blind spot, a row cache that matches the full pass,
exact likelihoods, sampling from the model's distribution, and learning on real digits."""

import math

import numpy as np
import pytest

import tfgen
import tfgen.models.pixelcnn as pixelcnn_module
from ar_checks import (
    assert_arguments_are_checked, assert_cache_matches_forward, assert_causal, assert_conditional_model_trains_and_round_trips,
    assert_compiled_functions_are_not_tracked, assert_log_prob_is_sum_of_conditionals, assert_metrics_in_nats_and_bits,
    assert_normalised, assert_samples_follow_the_model, binarised_digits,
    assert_colour_model_trains_samples_round_trips_and_exports, boundary_positions, causality_violations,
    colour_images, flat_logits,
)
from tfgen.layers.masked_conv import ChannelMaskedConv2D, HorizontalConv, VerticalConv

NAME = "pixelcnn"
# Small but with the default's shape: a 7×7 first layer and enough layers that the
# sampler's receptive-field crops (rows above, columns left) really cut.
SMALL = dict(filters=8, num_layers=4, kernel_size=3, first_kernel_size=7, head_filters=8)
# Colour small enough to check every sub-pixel in one pass; 4 levels per channel. 16 features
# per colour: with the tiny preset's 2–3, a pixel's G features are sometimes all cut by the
# ReLU before the head, and its R then (legitimately) cannot reach its G's prediction.
COLOUR = dict(image_shape=(8, 8, 3), levels=4, filters=48, head_filters=48)


def model_with(**overrides):
    return tfgen.get_model(NAME, "tiny", seed=0, **overrides)


def digit_like(levels=2, seed=0, n=1):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, levels, (n, 28, 28, 1)) / (levels - 1)).astype("float32")


@pytest.mark.parametrize("overrides", [{}, SMALL])
def test_changing_pixel_i_never_changes_predictions_at_pixels_up_to_i(overrides):
    # The bug that silently ruins PixelCNNs: a mask that lets a pixel see itself or a later pixel.
    model = model_with(**overrides)
    positions = list(range(0, 784, 3)) + boundary_positions(model.image_shape)  # one pass of ~270 images
    assert_causal(model, digit_like()[0], sorted(set(positions)))


@pytest.mark.parametrize("leak", ["horizontal", "vertical"])
def test_the_causality_check_catches_a_leaky_first_layer(leak, monkeypatch):
    # First horizontal layer seeing the current pixel ("mask B" where "mask A" is needed),
    # or a first vertical layer seeing the current row.
    if leak == "horizontal":
        monkeypatch.setattr(pixelcnn_module, "HorizontalConv",
                            lambda f, k, include_current, name: HorizontalConv(f, k, True, name=name))
    else:
        monkeypatch.setattr(pixelcnn_module, "VerticalConv",
                            lambda f, k, include_current_row, name: VerticalConv(f, k, True, name=name))
    model = model_with()
    before, _ = causality_violations(model, digit_like()[0], [100, 300, 500])
    assert np.all(before > 0)


def test_no_blind_spot():
    # Stacked masked 3×3 convolutions never see the pixels above and to the right of
    # (r, c); the vertical stack does. Every pixel within reach must influence (r, c).
    model = model_with(**SMALL)
    r, c, reach = 14, 10, model.reach
    sources = [(r - 1, c + reach), (r - 1, c + 1), (r - 2, c + 3), (r - reach, c), (r - 1, c - reach),
               (r, c - 1), (r, c - reach)]
    image = digit_like()[0]
    batch = np.repeat(image[None], len(sources) + 1, axis=0)
    for k, (i, j) in enumerate(sources):
        batch[k + 1, i, j, 0] = 1.0 - batch[k + 1, i, j, 0]
    logits = flat_logits(model, batch)
    change = np.abs(logits[1:, r * 28 + c] - logits[0, r * 28 + c]).max(axis=-1)
    assert np.all(change > 0), dict(zip(sources, change))
    # And nothing beyond `reach` (the sampler crops its inputs to it) matters.
    far = [(r - 1, c + reach + 1), (r - reach - 1, c), (r, c - reach - 1)]
    batch = np.repeat(image[None], len(far) + 1, axis=0)
    for k, (i, j) in enumerate(far):
        batch[k + 1, i, j, 0] = 1.0 - batch[k + 1, i, j, 0]
    logits = flat_logits(model, batch)
    np.testing.assert_array_equal(logits[1:, r * 28 + c], np.repeat(logits[:1, r * 28 + c], len(far), axis=0))


@pytest.mark.parametrize("overrides", [COLOUR, {**SMALL, **COLOUR}])
def test_each_colour_sub_pixel_sees_exactly_the_sub_pixels_before_it(overrides):
    # R of a pixel sees the pixels before it; G also that pixel's R; B its R and G.
    model = model_with(**overrides)
    assert_causal(model, colour_images(model.image_shape, model.levels, n=1)[0], list(range(model.num_dims)),
                  levels=model.levels)


def test_the_causality_check_catches_a_first_layer_that_sees_its_own_colour(monkeypatch):
    # Mask B where mask A is needed: R would predict itself from itself.
    original = pixelcnn_module.HorizontalConv
    monkeypatch.setattr(pixelcnn_module, "HorizontalConv", lambda *a, **kw: original(*a, **{**kw, "mask_type": "B"}))
    model = model_with(**COLOUR)
    positions = [99, 100, 101, 150, 151, 152]  # each channel, away from the borders
    before, _ = causality_violations(model, colour_images(model.image_shape, 4, n=1)[0], positions, levels=4)
    assert np.all(before > 0)


def test_grayscale_network_is_unchanged_and_colour_defaults_to_16_levels():
    # One channel: plain convolutions, exactly the layers (and weights) of the grayscale model.
    gray = model_with()
    assert gray.levels == 2 and not any(isinstance(l.conv, ChannelMaskedConv2D) for l in gray.horizontal.layers
                                        if isinstance(l, HorizontalConv))
    assert model_with(image_shape=(8, 8, 3)).levels == 16


@pytest.mark.parametrize("overrides", [{}, SMALL, dict(levels=4, conditional=True),
                                       {**SMALL, **COLOUR}, {**COLOUR, "conditional": True}])
def test_row_cached_sampler_step_gives_the_full_pass_logits(overrides):
    model = model_with(**overrides)
    images = colour_images(model.image_shape, model.levels)
    labels = np.array([3, 7], np.int32) if model.conditional else None
    assert_cache_matches_forward(model, images, labels)
    assert_log_prob_is_sum_of_conditionals(model, images, labels)


def test_loss_is_nats_per_image_and_bits_per_dim():
    assert_metrics_in_nats_and_bits(model_with(), digit_like(n=3))


@pytest.mark.parametrize("shape, levels", [((2, 3, 1), 2), ((2, 2, 1), 3), ((1, 2, 3), 2), ((1, 1, 3), 3)])
def test_likelihood_is_exact_and_the_sampler_draws_from_it(shape, levels):
    model = tfgen.get_model(NAME, "tiny", seed=1, image_shape=shape, levels=levels)
    log_p = assert_normalised(model)
    assert_samples_follow_the_model(model, log_p)


def test_sampling_options_and_conditioning():
    model = model_with(levels=4, conditional=True)
    images = np.asarray(model.sample(3, labels=[0, 1, 2], seed=1, temperature=0.7))
    assert set(np.unique(images * 3).round(4)) <= {0.0, 1.0, 2.0, 3.0}
    np.testing.assert_array_equal(model.sample(2, labels=4, top_k=1, seed=1),
                                  model.sample(2, labels=4, top_k=1, seed=2))
    image = np.repeat(digit_like(levels=4), 2, axis=0)
    log_p = np.asarray(model.log_prob(image, np.array([0, 9])))
    assert log_p[0] != log_p[1]
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.sample(2, labels=[-1, 3])
    with pytest.raises(ValueError, match="odd"):
        model_with(kernel_size=4)


def test_images_labels_and_counts_are_checked():
    assert_arguments_are_checked(tfgen.get_model(NAME, "tiny", seed=0, conditional=True))


def test_compiled_functions_are_not_tracked_by_keras():
    assert_compiled_functions_are_not_tracked(tfgen.get_model(NAME, "tiny", seed=0, image_shape=(2, 3, 1),
                                                              conditional=True))


def test_conditional_model_trains_and_round_trips(random_batches, tmp_path):
    assert_conditional_model_trains_and_round_trips(NAME, random_batches, tmp_path)


def test_colour_32x32_trains_samples_round_trips_and_exports(tmp_path):
    assert_colour_model_trains_samples_round_trips_and_exports(NAME, tmp_path)


@pytest.mark.learning
def test_held_out_nll_falls_far_below_uniform(digits):
    train, test = binarised_digits(digits, n_train=2048, n_test=512)
    model = tfgen.get_model(NAME, "default", seed=0, filters=16, num_layers=4, head_filters=32)
    model.default_compile()
    model.fit(train.shuffle(2048, seed=0).batch(32), epochs=1, verbose=0)
    nll = model.evaluate(test.batch(128), verbose=0, return_dict=True)["loss"]
    uniform = 784 * math.log(2)  # 543 nats: every pixel a coin flip
    # Independent per-pixel Bernoullis already reach ~206 nats on binarised MNIST;
    # below 160 the model uses the pixels it has seen.
    assert nll < 160, f"held-out NLL {nll:.1f} nats (uniform {uniform:.0f})"
