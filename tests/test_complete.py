"""`model.complete(images, mask, ...)`: the masks (tfgen.complete), the shared contract of every family, and each
family's completion — exact for the autoregressive ones (checked against the joint by enumeration), RePaint for the
denoising ones (the known region at every step), latent iteration for the VAEs, a one-line refusal for the GANs."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfgen
from tfgen.complete import check_mask, mask_from_spec, raster_prefix
from tfgen.models.base import CompletionNotSupported

AR_FAMILIES = ("pixelcnn", "pixel_transformer")


# ---------------------------------------------------------------------------------------------- masks
def test_named_holes_hide_the_named_part():
    top = mask_from_spec("top", (4, 6))
    assert top[:2].sum() == 0 and top[2:].min() == 1
    assert mask_from_spec("bottom", (5, 6))[2:].sum() == 0 and mask_from_spec("bottom", (5, 6))[:2].min() == 1
    assert mask_from_spec("left", (4, 6))[:, :3].sum() == 0 and mask_from_spec("right", (4, 6))[:, 3:].sum() == 0
    box = mask_from_spec("box:1,2,3,1", (4, 6))  # x=1, y=2, w=3, h=1
    assert box.sum() == 24 - 3 and box[2, 1:4].sum() == 0


def test_a_png_mask_hides_its_white_pixels(tmp_path):
    pixels = np.zeros((4, 6), np.uint8)
    pixels[1, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "hole.png")
    mask = mask_from_spec(str(tmp_path / "hole.png"), (4, 6, 1))
    assert mask[1, 2] == 0 and mask.sum() == 23
    with pytest.raises(ValueError, match="is 4x6; the model's images are 8x8"):
        mask_from_spec(str(tmp_path / "hole.png"), (8, 8))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mask_from_spec(str(tmp_path / "none.png"), (4, 6))


@pytest.mark.parametrize("spec, message", [
    ("middle", "is not a mask: expected top|bottom"),
    ("box:1,2,3", "expected box:x,y,w,h"),
    ("box:0,0,0,2", "expected box:x,y,w,h"),
    ("box:4,0,3,2", "leaves the 4x6 image"),
])
def test_bad_mask_names_are_one_line_errors(spec, message):
    with pytest.raises(ValueError, match=message) as err:
        mask_from_spec(spec, (4, 6))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1), (4, 6, 3), (2, 4, 6), (2, 4, 6, 1), (2, 4, 6, 3), (1, 4, 6, 3)])
def test_masks_broadcast_to_the_images(shape):
    per_image = len(shape) == 4 or shape == (2, 4, 6)
    mask = np.ones(shape)
    for one in (mask if per_image else [mask]):
        one.reshape(-1)[0] = 0  # the first (sub-)pixel hidden
    out = check_mask(mask, (2, 4, 6, 3))
    assert out.shape == (2, 4, 6, 3) and out.dtype == np.float32
    assert out[0, 0, 0, 0] == 0 and out[1, 0, 0, 0] == 0


@pytest.mark.parametrize("mask, message", [
    (np.ones((4, 5)), r"mask of shape \(4, 5\) does not fit images of shape \(2, 4, 6, 3\)"),
    (np.ones((3, 4, 6)), r"does not fit"),
    (np.ones((4, 6, 2)), r"does not fit"),
    (np.ones((4, 6)), "keeps every pixel of image 0: nothing to complete"),
    (np.zeros((4, 6)), "hides every pixel of image 0: nothing is given to complete from"),
    (np.stack([np.eye(4, 6), np.zeros((4, 6))]), "hides every pixel of image 1"),
    (np.full((4, 6), 0.5), r"mask values must be 0 \(fill in\) or 1 \(known\), got 24 other value\(s\)"),
    (np.where(np.eye(4, 6) > 0, 2.0, 0.0), "got 4 other value"),
    (np.array([["a"] * 6] * 4), "mask must be an array of 0s and 1s"),
])
def test_bad_masks_are_one_line_errors(mask, message):
    with pytest.raises(ValueError, match=message) as err:
        check_mask(mask, (2, 4, 6, 3))
    assert "\n" not in str(err.value)


def test_raster_prefix():
    assert raster_prefix(mask_from_spec("bottom", (4, 4))[None, ..., None])
    for hole in ("top", "left", "right", "box:1,1,2,2"):
        assert not raster_prefix(mask_from_spec(hole, (4, 4))[None, ..., None])


# ---------------------------------------------------------------------------------------------- autoregressive
def peaked_tiny(name, seed=0):
    """A tiny 2×2 binary model with random weights large enough for an uneven joint distribution."""
    model = tfgen.get_model(name, preset="tiny", image_shape=(2, 2, 1), levels=2)
    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:
        variable.assign(rng.normal(0, 0.4, variable.shape).astype("float32"))
    return model


ALL_IMAGES = np.array(list(itertools.product([0, 1], repeat=4)), np.float32)  # raster order, (16, 4)


def enumerated_conditional(model, image, known):
    """p(completion | known sub-pixels of `image`) over all 16 images, from the model's exact likelihood."""
    joint = np.exp(model.log_prob(ALL_IMAGES.reshape(16, 2, 2, 1)).numpy())
    consistent = np.all(ALL_IMAGES[:, known] == image.reshape(-1)[known], axis=1)
    conditional = np.where(consistent, joint, 0.0)
    return conditional / conditional.sum()


def empirical(completions):
    flat = completions.reshape(len(completions), 4)
    codes = (flat * [8, 4, 2, 1]).sum(axis=1).astype(int)  # the index of each image in ALL_IMAGES
    return np.bincount(codes, minlength=16) / len(codes)


@pytest.mark.parametrize("name", AR_FAMILIES)
def test_ar_completion_of_a_raster_prefix_is_the_joints_conditional(name):
    model = peaked_tiny(name)
    image = ALL_IMAGES[9].reshape(1, 2, 2, 1)  # 1 0 / 0 1
    mask = np.array([[1, 1], [0, 0]])  # the top row known: a prefix in raster order
    out = model.complete(image, mask, n=4000, seed=3).numpy()[0]
    assert np.all(out[:, 0] == image[0, 0])  # known sub-pixels never change
    exact = enumerated_conditional(model, image, np.array([True, True, False, False]))
    assert 0.5 * np.abs(empirical(out) - exact).sum() < 0.03


@pytest.mark.parametrize("name", AR_FAMILIES)
def test_ar_particles_correct_for_known_pixels_after_unknown_ones(name):
    model = peaked_tiny(name, seed=1)
    image = ALL_IMAGES[6].reshape(1, 2, 2, 1)  # 0 1 / 1 0
    mask = np.array([[0, 1], [0, 1]])  # the right column known: position 1 comes after position 0, 3 after 2
    known = np.array([False, True, False, True])
    exact = enumerated_conditional(model, image, known)
    out = model.complete(image, mask, n=2000, seed=4, particles=64).numpy()[0]
    assert np.all(out[:, :, 1] == image[0, :, 1])
    assert 0.5 * np.abs(empirical(out) - exact).sum() < 0.05


@pytest.mark.parametrize("name", AR_FAMILIES)
def test_ar_completion_keeps_known_sub_pixels_of_colour_images(name):
    model = tfgen.get_model(name, preset="tiny", image_shape=(3, 3, 3))
    images = np.random.default_rng(0).uniform(size=(2, 3, 3, 3)).astype("float32")
    mask = np.random.default_rng(1).integers(0, 2, size=(2, 3, 3, 3))  # sub-pixel by sub-pixel, per image
    mask[:, 0, 0, 0], mask[:, 2, 2, 2] = 1, 0
    out = model.complete(images, mask, n=3, seed=0, particles=2).numpy()
    assert out.shape == (2, 3, 3, 3, 3)
    given = np.repeat(model.to_levels(images).numpy()[:, None] / (model.levels - 1), 3, axis=1)
    known = np.repeat(mask[:, None] == 1, 3, axis=1)
    np.testing.assert_allclose(out[known], given[known], atol=1e-6)
    # Reproducible for an int seed.
    np.testing.assert_array_equal(out, model.complete(images, mask, n=3, seed=0, particles=2).numpy())


# ---------------------------------------------------------------------------------------------- diffusion and flow
DENOISING = ("diffusion", "flow")


@pytest.mark.parametrize("name", DENOISING)
def test_forward_transition_gives_the_marginal_of_the_later_time(name):
    """q(x_t | x_s) after q(x_s | x_0) is q(x_t | x_0): the same signal coefficient and noise variance."""
    process = tfgen.get_model(name, preset="tiny", image_shape=(8, 8, 1)).process
    s, t = (tf.constant(200), tf.constant(700)) if name == "diffusion" else (tf.constant(0.2), tf.constant(0.7))
    one, zero = tf.ones([1, 1, 1, 1]), tf.zeros([1, 1, 1, 1])
    signal = process.forward_transition(process.add_noise(one, zero, s), s, t, zero)
    noise_var = (process.forward_transition(process.add_noise(zero, one, s), s, t, zero) ** 2
                 + process.forward_transition(zero, s, t, one) ** 2)
    np.testing.assert_allclose(signal, process.add_noise(one, zero, t), rtol=1e-5)
    np.testing.assert_allclose(noise_var, process.add_noise(zero, one, t) ** 2, rtol=1e-5)


@pytest.mark.parametrize("name", DENOISING)
def test_repaint_holds_the_known_region_at_each_steps_noise_level(name):
    model = tfgen.get_model(name, preset="tiny", image_shape=(8, 8, 1))
    x0 = tf.constant(np.random.default_rng(0).uniform(-1, 1, size=(128, 8, 8, 1)), tf.float32)
    mask = tf.constant(np.tile(mask_from_spec("bottom", (8, 8))[None, ..., None], (128, 1, 1, 1)))
    sampler = model.REPAINT_SAMPLER
    grid = tf.constant(model.sampling_grid(sampler, 3))
    labels = model.network_labels(None, 128)
    x, trajectory, times = model.repaint_process(tf.constant([5, 0], tf.int64), labels, grid,
                                                 tf.constant(model.sampler_eta(sampler, None)), tf.constant(1.0),
                                                 x0, mask, tf.constant(2), sampler=sampler, trace=True)
    # Three steps, each taken twice but the last (to the data): back to the step's start in between.
    assert times.numpy().tolist() == [2, 1, 1, 0, -1]
    known = mask.numpy() == 1
    for state, index in zip(trajectory.numpy(), times.numpy()):
        if index < 0:
            np.testing.assert_array_equal(state[known], x0.numpy()[known])
            continue
        t = grid[index]
        signal = model.process.add_noise(tf.ones([1, 1, 1, 1]), tf.zeros([1, 1, 1, 1]), t).numpy()
        scale = model.process.add_noise(tf.zeros([1, 1, 1, 1]), tf.ones([1, 1, 1, 1]), t).numpy()
        residual = ((state - signal * x0.numpy()) / scale)[known]  # ~ N(0, 1) if x_t ~ q(x_t | x_0)
        assert abs(residual.mean()) < 0.05 and abs(residual.std() - 1) < 0.05, (index, residual.mean(), residual.std())
    np.testing.assert_array_equal(x.numpy()[known], x0.numpy()[known])


@pytest.mark.parametrize("name", DENOISING)
def test_denoising_completion_keeps_known_pixels_and_edit_keeps_shapes(name):
    model = tfgen.get_model(name, preset="tiny", image_shape=(8, 8, 3))
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    mask = mask_from_spec("box:2,2,4,4", (8, 8))
    out = model.complete(images, mask, n=2, seed=0, steps=3, resample=2).numpy()
    assert out.shape == (2, 2, 8, 8, 3) and out.min() >= 0 and out.max() <= 1
    known = np.broadcast_to(mask[None, None, :, :, None] == 1, out.shape)
    np.testing.assert_array_equal(out[known], np.repeat(images[:, None], 2, axis=1)[known])
    assert not np.allclose(out[~known], np.repeat(images[:, None], 2, axis=1)[~known], atol=1e-3)
    np.testing.assert_array_equal(out, model.complete(images, mask, n=2, seed=0, steps=3, resample=2).numpy())
    edited = model.edit(images, strength=0.3, n=2, seed=1, steps=4).numpy()
    assert edited.shape == (2, 2, 8, 8, 3) and edited.min() >= 0 and edited.max() <= 1
    with pytest.raises(ValueError, match=r"strength must be a number in \[0, 1\]"):
        model.edit(images, strength=1.5)


def test_repaint_refuses_resampling_a_multistep_sampler():
    model = tfgen.get_model("diffusion", preset="tiny", image_shape=(8, 8, 1))
    images = np.zeros((1, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="sampler 'dpm\\+\\+' carries state"):
        model.complete(images, mask_from_spec("top", (8, 8)), sampler="dpm++", resample=2)


def test_latent_diffusion_pins_only_latents_whose_pixels_are_all_known_and_pastes_the_pixels():
    model = tfgen.get_model("latent_diffusion", preset="tiny", image_shape=(16, 16, 3))
    mask = np.ones((1, 16, 16, 3), np.float32)
    mask[0, 5, 9, 1] = 0  # one sub-pixel of latent cell (1, 2)
    cells = model.mask_to_model_space(tf.constant(mask)).numpy()
    assert cells.shape == (1, 4, 4, 4) and cells[0, 1, 2].max() == 0 and cells.sum() == 15 * 4
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    out = model.complete(images, mask_from_spec("right", (16, 16)), n=2, seed=0, steps=2, resample=2).numpy()
    np.testing.assert_array_equal(out[:, :, :, :8], np.repeat(images[:, None, :, :8], 2, axis=1))
    assert model.edit(images, 0.5, steps=2).shape == (2, 1, 16, 16, 3)


# ---------------------------------------------------------------------------------------------- VAEs, GANs, all
@pytest.mark.parametrize("name", ("vae", "cvae"))
def test_vae_completion_keeps_known_pixels_and_draws_different_completions(name):
    model = tfgen.get_model(name, preset="tiny", image_shape=(8, 8, 1))
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    labels = [3, 5] if name == "cvae" else None
    out = model.complete(images, mask_from_spec("top", (8, 8)), n=3, seed=0, labels=labels, iterations=5).numpy()
    assert out.shape == (2, 3, 8, 8, 1)
    np.testing.assert_array_equal(out[:, :, 4:], np.repeat(images[:, None, 4:], 3, axis=1))
    assert np.abs(out[:, 0, :4] - out[:, 1, :4]).max() > 1e-4  # the chain's draws differ
    path = model.interpolate(images[:1], images[1:], steps=4, labels=labels and labels[:1]).numpy()
    assert path.shape == (1, 4, 8, 8, 1)
    np.testing.assert_allclose(path[0, 0], model.reconstruct(tf.constant(images[:1]), labels and labels[:1])[0], atol=1e-5)


def test_a_conditional_model_checks_the_images_labels():
    model = tfgen.get_model("cvae", preset="tiny", image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="labels: expected one per image \\(1\\), got 2"):
        model.complete(np.zeros((1, 8, 8, 1), np.float32), mask_from_spec("top", (8, 8)), labels=[1, 2])


def test_cvae_without_labels_weighs_the_classes_by_the_known_pixels_elbo():
    model = tfgen.get_model("cvae", preset="tiny", image_shape=(8, 8, 1), num_classes=3)
    images = np.random.default_rng(1).uniform(size=(2, 8, 8, 1)).astype("float32")
    mask = np.repeat(mask_from_spec("top", (8, 8))[None, :, :, None], 2, axis=0).astype("float32")
    seed = tf.constant([7, 0], tf.int64)
    scores, completed = model._class_scores(tf.constant(images), tf.constant(mask), seed, tf.constant(3))
    assert scores.shape == (2, 3) and completed.shape == (2, 3, 8, 8, 1)
    # By hand, for image 1 under class 2: −Σ_known BCE(x, decoder(μ)) − KL(q ‖ N(0, I)).
    x = completed[1, 2][None]
    np.testing.assert_array_equal(x[0, 4:], images[1, 4:])  # the chain keeps the known pixels
    mean, log_var = (v.numpy()[0] for v in model.encode(x, tf.constant([2])))
    p = tf.sigmoid(model.decode_logits(tf.constant(mean[None]), tf.constant([2]))).numpy()[0].astype("float64")
    known = mask[1] == 1
    bce = -(images[1] * np.log(p) + (1 - images[1]) * np.log(1 - p))[known].sum()
    kl = -0.5 * np.sum(1 + log_var - mean ** 2 - np.exp(log_var))
    np.testing.assert_allclose(scores[1, 2], -bce - kl, rtol=1e-4)
    posterior = model.class_posterior(images, mask_from_spec("top", (8, 8)), seed=0, iterations=3).numpy()
    assert posterior.shape == (2, 3)
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0, rtol=1e-5)
    out = model.complete(images, mask_from_spec("top", (8, 8)), n=4, seed=0, iterations=3).numpy()
    np.testing.assert_array_equal(out[:, :, 4:], np.repeat(images[:, None, 4:], 4, axis=1))
    with pytest.raises(ValueError, match="VAE is unconditional"):
        tfgen.get_model("vae", preset="tiny", image_shape=(8, 8, 1)).class_posterior(images, mask)


@pytest.mark.parametrize("name", tfgen.list_models())
def test_every_family_completes_or_says_in_one_line_why_not(name):
    model = tfgen.get_model(name, preset="tiny")
    images = np.full((1, *model.image_shape), 0.5, np.float32)
    mask = mask_from_spec("bottom", model.image_shape)
    options = {"steps": 1, "resample": 1} if hasattr(model, "repaint_process") else {}
    labels = [1] if model.requires_labels else None
    if not model.can_complete:
        with pytest.raises(CompletionNotSupported, match=f"{name} cannot complete a given image: .+") as err:
            model.complete(images, mask, labels=labels)
        assert "\n" not in str(err.value)
        return
    out = model.complete(images, mask, n=2, seed=0, labels=labels, **options)
    assert out.shape == (1, 2, *model.image_shape)
    with pytest.raises(ValueError, match="keeps every pixel"):
        model.complete(images, np.ones(model.image_shape[:2]), labels=labels)
