"""Diffusion: schedule and sampler maths against hand values and analytic oracles, EMA, guidance, learning."""

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgen
from tfgen import schedules
from tfgen.cli import with_sampling_steps
from tfgen.models.diffusion import VALIDATION_SEED
from tfgen.plotting import sample_for_grid
from tfgen.registry import UnknownNameError


def test_unknown_names_are_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown noise schedule 'quadratic'.*linear, cosine"):
        tfgen.get_model("diffusion", "tiny", schedule="quadratic")
    with pytest.raises(UnknownNameError, match="unknown prediction 'x0'"):
        tfgen.get_model("diffusion", "tiny", prediction="x0")
    model = tfgen.get_model("diffusion", "tiny")
    with pytest.raises(UnknownNameError, match="unknown sampler 'euler'.*ddim, ddpm"):
        model.sample(2, sampler="euler")


# ---------------------------------------------------------------------------- sampling
class GaussianOracle:
    """The exact denoiser for data x_0 ~ N(μ_y, s²) per pixel, μ_y depending on the label.

    x_t ~ N(√ᾱ μ, ᾱ s² + 1 − ᾱ), so E[ε | x_t] = √(1−ᾱ) (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ).
    A correct sampler driven by it must return N(μ_y, s²) samples.
    """

    def __init__(self, model, means, std):
        self.model, self.means, self.std = model, tf.constant(means, tf.float32), std

    def __call__(self, inputs, training=False):
        x, t, labels = inputs
        signal, noise_scale = self.model.noise_schedule.coefficients(t)  # √ᾱ, √(1 − ᾱ)
        mu = tf.reshape(tf.gather(self.means, labels), [-1, 1, 1, 1])
        eps = noise_scale * (x - signal * mu) / (signal**2 * self.std**2 + noise_scale**2)
        if self.model.prediction == "epsilon":
            return eps
        x0 = (x - noise_scale * eps) / signal
        return signal * eps - noise_scale * x0


def oracle_model(means, std=0.1, **overrides):
    model = tfgen.get_model("diffusion", "tiny", **overrides)
    object.__setattr__(model, "ema_network", GaussianOracle(model, means, std))  # bypass Keras tracking
    return model


def exact_sample_std(schedule, steps, eta, std):
    """The spread of the sampler's output for data N(μ, std²) and the exact denoiser, in float64.

    With that denoiser (and x̂_0 within [−1, 1], so unclipped) every DDIM step is an affine
    map of x plus independent noise σ z: x_prev = C x + D + σ z. So, from x_T ~ N(0, 1),
    Var(x_prev) = C² Var(x) + σ², exactly; μ only shifts the mean. Returns the std of the
    images (x + 1)/2.
    """
    alpha_bar = schedules.alpha_bars(schedule, 1000)
    timesteps = schedules.sampling_timesteps(1000, steps)
    variance = 1.0
    for i in reversed(range(len(timesteps))):
        a = alpha_bar[timesteps[i]]
        a_prev = alpha_bar[timesteps[i - 1]] if i > 0 else 1.0
        k = np.sqrt(1 - a) / (a * std**2 + 1 - a)  # ε̂ = k (x − √ᾱ μ)
        x0_gain = (1 - np.sqrt(1 - a) * k) / np.sqrt(a)  # x̂_0 = x0_gain · x + const
        sigma = eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        gain = np.sqrt(a_prev) * x0_gain + np.sqrt(1 - a_prev - sigma**2) * k
        variance = gain**2 * variance + sigma**2
    return np.sqrt(variance) / 2


@pytest.mark.parametrize(
    "sampler, eta, prediction, schedule",
    [("ddim", 0.0, "epsilon", "cosine"), ("ddim", 0.0, "v", "linear"), ("ddim", 0.5, "v", "cosine"),
     ("ddpm", None, "epsilon", "linear")],
)
def test_samplers_recover_a_gaussian_data_distribution(sampler, eta, prediction, schedule):
    # Unconditional (null label, the last entry): data N(0.2, 0.1²) in [−1, 1], i.e. 0.6 ± 0.05 as images.
    model = oracle_model([0.0] * 10 + [0.2], prediction=prediction, schedule=schedule)
    kwargs = {} if eta is None else {"eta": eta}
    eta = 1.0 if eta is None else eta
    # 64 images: 50,176 independent pixels. The sample mean's standard error is 0.05/√50176 = 2e-4,
    # the sample std's relative standard error 1/√(2·50176) = 0.3%: the bounds below are ≥ 6 of them.
    for steps in (1000, 10):
        images = np.asarray(model.sample(64, steps=steps, sampler=sampler, seed=0, **kwargs))
        assert images.mean() == pytest.approx(0.6, abs=0.003)
        assert images.std() == pytest.approx(exact_sample_std(schedule, steps, eta, std=0.1), rel=0.02)
    # What the exact spreads say: with all 1000 steps the data's spread within 4%; with 10 the large
    # steps shrink it to about half (0.013–0.025), for every sampler here.
    assert exact_sample_std(schedule, 1000, eta, std=0.1) == pytest.approx(0.05, rel=0.04)
    assert exact_sample_std(schedule, 10, eta, std=0.1) < 0.6 * 0.05


def stub_network(inputs, training=False):
    """A fixed, weightless stand-in for the U-Net: the sampler's numbers then depend on its maths only."""
    x, t, labels = inputs
    t = tf.cast(t, tf.float32)[:, None, None, None]
    labels = tf.cast(labels, tf.float32)[:, None, None, None]
    return 0.5 * x + 0.001 * t + 0.01 * labels


REFERENCE_CASES = {  # name: (hyperparameters, sample arguments)
    "eps_cosine_ddim": (dict(prediction="epsilon", schedule="cosine"), dict(steps=10)),
    "v_linear_ddpm_guided": (dict(prediction="v", schedule="linear", timesteps=50),
                             dict(steps=20, sampler="ddpm", labels=[1, -1], guidance=3.0)),
    "v_cosine_eta": (dict(prediction="v", schedule="cosine", timesteps=100),
                     dict(steps=5, eta=0.5, labels=2, guidance=1.0)),
}


@pytest.mark.parametrize("case", REFERENCE_CASES)
def test_samples_and_losses_are_the_numbers_of_the_code_before_noise_schedule(case):
    # tests/fixtures/diffusion_reference.npz: these cases computed by the sampler and loss as they were
    # before their arithmetic moved to `schedules.NoiseSchedule` (tfgen at commit fa372b6).
    reference = np.load(Path(__file__).resolve().parent.parent / "fixtures" / "diffusion_reference.npz")
    build, kwargs = REFERENCE_CASES[case]
    model = tfgen.get_model("diffusion", "tiny", **build)
    object.__setattr__(model, "ema_network", stub_network)  # bypass Keras tracking
    np.testing.assert_array_equal(np.asarray(model.sample(2, seed=7, **kwargs)), reference[f"{case}_sample"])
    images = tf.random.stateless_uniform([2, 28, 28, 1], seed=[1, 2])
    noise = tf.random.stateless_normal([2, 28, 28, 1], seed=[3, 4])
    loss = model.denoising_loss(stub_network, images, tf.constant([4, 10]), tf.constant([3, model.timesteps - 1]), noise)
    np.testing.assert_array_equal(np.asarray(loss), reference[f"{case}_loss"])


def test_guidance_interpolates_between_unconditional_and_conditional():
    means = [-0.5 + 0.1 * k for k in range(10)] + [0.0]  # label k → μ = −0.5 + 0.1k; null → 0
    model = oracle_model(means, std=0.05)
    labels = np.arange(10)
    mean_per_class = lambda g: np.asarray(model.sample(10, labels=labels, guidance=g, seed=1)).mean(axis=(1, 2, 3))
    # guidance 1: the conditional model; 0: the unconditional one (images: (μ + 1)/2).
    np.testing.assert_allclose(mean_per_class(1.0), (np.array(means[:10]) + 1) / 2, atol=0.01)
    np.testing.assert_allclose(mean_per_class(0.0), np.full(10, 0.5), atol=0.01)
    # guidance > 1 pushes beyond the conditional mean, away from the unconditional one.
    strong = mean_per_class(2.0)
    assert strong[0] < mean_per_class(1.0)[0] < 0.5 < mean_per_class(1.0)[9] < strong[9]


@pytest.fixture(scope="module")
def sampling_model():
    """One untrained tiny model for the sampler mechanics below: its two compiled samplers
    (guided and unguided) are traced once for all of them, not once per test (~2 s each)."""
    return tfgen.get_model("diffusion", "tiny", seed=0)


def test_ddim_without_noise_is_reproducible_and_seeded(sampling_model):
    model = sampling_model
    a = np.asarray(model.sample(4, steps=10, seed=3))
    np.testing.assert_array_equal(a, model.sample(4, steps=10, seed=3))
    assert not np.array_equal(a, model.sample(4, steps=10, seed=4))
    # Stochastic samplers are reproducible for a seed too, and differ from η = 0.
    b = np.asarray(model.sample(4, steps=10, eta=1.0, seed=3))
    np.testing.assert_array_equal(b, model.sample(4, steps=10, sampler="ddpm", seed=3))
    assert not np.array_equal(a, b)
    # Without a seed: new draws every call.
    assert not np.array_equal(model.sample(2, steps=5), model.sample(2, steps=5))


def test_sample_shapes_ranges_and_label_errors(sampling_model):
    model = sampling_model
    for labels in (None, 3, [0, 1, 2], np.array([9, 9, 9]), tf.constant([4, 5, 6]), [3.0, 1.0, -1]):
        images = model.sample(3, labels=labels, steps=4, seed=0)
        assert images.shape == (3, 28, 28, 1) and images.dtype == tf.float32
        assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    # The shared label checks (`conditioning.as_labels`), with −1 for "unconditional".
    for labels, message in [([3, 10], r"must be in \[-1, 10\) \(-1: unconditional\).*\[10\]"),
                            ([1.5, 2.0], "integer class indices"), (np.eye(10, dtype="int32")[:2], "one-hot"),
                            ([1, 2, 3], "3 entries but 2 samples")]:
        with pytest.raises(ValueError, match=message):
            model.sample(2, labels=labels)
    for n in (0, 2.5):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            model.sample(n)
    with pytest.raises(ValueError, match="class_conditional=False"):
        tfgen.get_model("diffusion", "tiny", class_conditional=False).sample(2, labels=[1, 2])


def test_label_minus_one_samples_the_unconditional_model(sampling_model):
    model = sampling_model
    # Guided, with the null label in both halves of the batch: guidance leaves ε(x, ∅) unchanged.
    np.testing.assert_allclose(model.sample(2, labels=-1, steps=3, seed=5), model.sample(2, steps=3, seed=5),
                               atol=1e-5)


@pytest.mark.parametrize("class_conditional", [True, False])
def test_class_conditional_model_takes_labels_in_grids(class_conditional):
    model = tfgen.get_model("diffusion", "tiny", seed=0, class_conditional=class_conditional)
    # Labels stay optional (batches may be images only); but a class-conditional model takes them.
    assert not model.requires_labels and model.accepts_labels == class_conditional
    images, ncols = sample_for_grid(with_sampling_steps(model, 2), 20, seed=0)
    assert (len(images), ncols) == ((20, 2) if class_conditional else (20, None))  # one row per class


def test_compiled_samplers_are_not_tracked_by_keras(sampling_model):
    # Caches of traced graphs: not part of the model's TensorFlow object graph (what SavedModel saves).
    model = sampling_model
    model.sample(1, labels=[2], steps=2, seed=0)
    model.sample(1, steps=2, seed=0)
    children = model._trackable_children("savedmodel")
    assert not [name for name, child in children.items() if isinstance(child, tf.types.experimental.GenericFunction)]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(channel_mults=()), "channel_mults must be a non-empty sequence of positive integers"),
        (dict(channel_mults=(1, 0)), r"channel_mults must be .* got \(1, 0\)"),
        # The stem (12 channels) feeds the first block; the block widths 24 and 48 split into 8 groups.
        (dict(base_channels=12, channel_mults=(2, 4)), "'down0_0_norm1': 12 channels do not split into 8 groups"),
        # Widths 4 and 8 are fine (4 < 8 groups: one per channel); the concatenation 8 + 4 on the way up is not.
        (dict(base_channels=4, channel_mults=(1, 2)), "'up1_1_norm1': 12 channels do not split into 8 groups"),
    ],
)
def test_unet_widths_are_checked_with_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        tfgen.get_model("diffusion", "tiny", norm_groups=8, **overrides)


# ---------------------------------------------------------------------------- training
class WeightLog(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.weights.append([w.numpy() for w in self.model.network.weights])


def fit_logging_weights(model, batches):
    """Fit eagerly (the same train_step; mechanics tests need no tracing), logging the weights per step."""
    model.default_compile(run_eagerly=True)
    log = WeightLog()
    log.weights = [[w.numpy() for w in model.network.weights]]
    model.fit(batches, verbose=0, callbacks=[log])
    return log.weights


def test_ema_is_a_separate_sub_model_updated_with_warm_up(random_batches):
    model = tfgen.get_model("diffusion", "tiny", seed=0, ema_decay=0.9)
    assert not any(v is e for v in model.trainable_variables for e in model.ema_network.weights)
    w0, w1, w2 = fit_logging_weights(model, random_batches.take(2))
    # After step n the decay is min(0.9, (1 + n)/(10 + n)): 2/11, then 3/12.
    for i, ema in enumerate(model.ema_network.weights):
        ema1 = 2 / 11 * w0[i] + 9 / 11 * w1[i]
        np.testing.assert_allclose(ema.numpy(), 3 / 12 * ema1 + 9 / 12 * w2[i], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("label_dropout", [1.0, 0.0])
def test_label_dropout_trains_the_null_class(random_batches, label_dropout):
    batches = random_batches.take(3)
    # The zero-initialised output layer passes no gradient back in step 1: labels count from step 2.
    seen = np.unique(np.concatenate([y for _, y in batches.skip(1).as_numpy_iterator()]))
    model = tfgen.get_model("diffusion", "tiny", seed=0, label_dropout=label_dropout)
    table = model.network.get_layer("label_embedding").embeddings
    before = table.numpy()
    fit_logging_weights(model, batches)
    # Only the embeddings of labels the network saw change: only the null class (10)
    # with dropout 1, never it with dropout 0.
    changed = np.flatnonzero(np.any(table.numpy() != before, axis=1))
    np.testing.assert_array_equal(changed, [10] if label_dropout == 1.0 else seen)


def test_validation_loss_is_deterministic_and_starts_at_one(random_batches):
    model = tfgen.get_model("diffusion", "tiny", seed=0)
    model.default_compile()
    first = model.evaluate(random_batches, verbose=0, return_dict=True)["loss"]
    assert first == model.evaluate(random_batches, verbose=0, return_dict=True)["loss"]
    # The zero-initialised output layer predicts ε̂ = 0, so the loss is exactly the mean ε² of the
    # fixed validation noise (the same for every batch of 8: 6272 pixels)...
    noise = np.asarray(tf.random.stateless_normal([8, 28, 28, 1], seed=VALIDATION_SEED), np.float64)
    assert first == pytest.approx(np.mean(noise**2), rel=1e-5)
    # ...which is E[ε²] = 1 up to its standard error √(2/6272) = 0.018: here within 5 of them.
    assert np.mean(noise**2) == pytest.approx(1.0, abs=5 * math.sqrt(2 / 6272))


def test_out_of_range_labels_in_a_batch_fail_the_step():
    # Label 10 is the embedding row of the null class: it must not silently be trained or scored.
    # (`unpack` checks it for every step; the validation step is the cheaper one to trace.)
    model = tfgen.get_model("diffusion", "tiny", seed=0)
    model.default_compile()
    bad = tf.data.Dataset.from_tensor_slices((np.zeros((2, 28, 28, 1), "float32"), np.array([3, 10]))).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be < num_classes=10"):
        model.evaluate(bad, verbose=0)


@pytest.mark.learning
def test_validation_denoising_loss_falls_well_below_its_start(digits):
    x_train, y_train, x_test, y_test = digits
    # 80 steps of 16 measured end/start 0.25 and 0.26 (seeds 0, 1); 40 steps only 0.45–0.51.
    train = tf.data.Dataset.from_tensor_slices((x_train[:1280], y_train[:1280])).shuffle(1280, seed=0).batch(16)
    test = tf.data.Dataset.from_tensor_slices((x_test[:256], y_test[:256])).batch(128)
    model = tfgen.get_model("diffusion", "default", seed=0)
    model.default_compile()
    start = model.evaluate(test, verbose=0, return_dict=True)["loss"]
    model.fit(train, epochs=1, verbose=0)
    end = model.evaluate(test, verbose=0, return_dict=True)["loss"]
    # The untrained network predicts 0 (a loss of E[target²]); one that has learnt anything
    # about digits (where the strokes are, that the background is flat) predicts most of the target.
    assert end < 0.35 * start, (start, end)
