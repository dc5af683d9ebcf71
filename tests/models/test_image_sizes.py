"""The convolutional families at other image sizes and in colour: networks whose depth follows
the size (`tfgen.layers.resolution`), one training step, samples, `.keras` round trip, export."""

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from model_checks import assert_export_samples, assert_roundtrip

FAMILIES = ("vae", "cvae", "gan", "cgan", "diffusion", "flow", "latent_diffusion")
# Every family in colour at 32×32 through to export; each at one more size (grey 64×64, colour
# 28×28, non-square) through training and sampling, which is all that depends on the size.
CASES = [(name, (32, 32, 3), True) for name in FAMILIES] + [
    ("vae", (64, 64, 1), False), ("cvae", (28, 28, 3), False), ("gan", (48, 64, 3), False),
    ("cgan", (64, 64, 3), False), ("diffusion", (48, 64, 3), False), ("flow", (48, 64, 3), False),
    ("latent_diffusion", (64, 64, 3), False),
]


def random_batch(shape, n=8):
    rng = np.random.default_rng(0)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)


@pytest.mark.parametrize("name, shape, through_export", CASES,
                         ids=[f"{n}-{'x'.join(map(str, s))}" for n, s, _ in CASES])
def test_tiny_preset_trains_samples_round_trips_and_exports(name, shape, through_export, tmp_path):
    model = tfgen.get_model(name, "tiny", seed=0, image_shape=shape)
    images, labels = random_batch(shape)
    # One eager step: the same train_step, without tracing it (seconds per model).
    model.default_compile(run_eagerly=True)
    before = [w.numpy() for w in model.trainable_weights]
    history = model.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), verbose=0).history
    assert all(np.isfinite(values).all() for values in history.values()), history
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))

    samples = np.asarray(model.sample(3, seed=5))
    assert samples.shape == (3, *shape) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    if through_export:
        assert_roundtrip(model, images, tmp_path, labels if model.accepts_labels else None)
        assert_export_samples(model, tmp_path / "export")


@pytest.mark.parametrize("shape, lowest", [((28, 28, 1), (7, 7)), ((32, 32, 3), (4, 4)), ((48, 64, 3), (6, 8))])
def test_every_network_goes_down_to_the_lowest_resolution_of_the_size(shape, lowest):
    def spatial_shapes(network):  # of every image-like output (not the embeddings' (1, 1) broadcast maps)
        return {tuple(layer.output.shape[1:3]) for layer in network.layers
                if len(layer.output.shape) == 4 and min(layer.output.shape[1:3]) > 1}

    vae = tfgen.get_model("vae", "tiny", image_shape=shape)
    gan = tfgen.get_model("gan", "tiny", image_shape=shape)
    diffusion = tfgen.get_model("diffusion", "tiny", image_shape=shape, attention=True)
    for network in (vae.encoder, vae.decoder, gan.generator, gan.discriminator, diffusion.network):
        assert min(spatial_shapes(network)) == lowest, network.name
        assert max(spatial_shapes(network)) == shape[:2], network.name
    assert diffusion.network.get_layer("mid_attn_mha").output.shape[1] == lowest[0] * lowest[1]
    assert vae.decoder.output.shape[1:] == gan.generator.output.shape[1:] == shape


def test_the_28x28_networks_are_unchanged():
    """The MNIST networks (and the results measured with them) keep their layers at 28×28."""
    expected = {"vae": 1696097, "cvae": 1704609, "gan": 351970, "cgan": 484002, "diffusion": 1181986, "flow": 1181986}
    # The GANs' averaged generator is a copy of the generator, not a layer more in the networks trained.
    trained = {name: tfgen.get_model(name, "default", **({"ema_decay": 0.0} if name in ("gan", "cgan") else {}))
               for name in expected}
    assert {name: model.count_params() for name, model in trained.items()} == expected


@pytest.mark.parametrize("name", FAMILIES)
def test_a_size_the_networks_cannot_halve_is_refused_at_construction(name):
    cls = tfgen.get_model_class(name)
    message = rf"^{cls.__name__} cannot use 30×30 images: .*\(e\.g\. 28, 32, 48, 64, 48×64\)$"
    with pytest.raises(ValueError, match=message):
        cls.check_image_size((30, 30, 3), **cls.PRESETS["default"])  # what the command line can ask first
    with pytest.raises(ValueError, match=message):
        tfgen.get_model(name, "tiny", image_shape=(30, 30, 3))


@pytest.mark.parametrize("name", ["gan", "cgan"])
def test_the_documents_gan_networks_are_for_28x28_only(name):
    cls = tfgen.get_model_class(name)
    assert cls.check_image_size([28, 28, 3], **cls.PRESETS["mlp"]) == (28, 28, 3)
    assert cls.check_image_size((32, 32, 3), **cls.PRESETS["default"]) == (32, 32, 3)
    message = rf"^{cls.__name__} architecture 'mlp' .* 28×28 images only, got 32×32: use architecture 'dcgan'"
    with pytest.raises(ValueError, match=message):
        cls.check_image_size((32, 32, 3), **cls.PRESETS["mlp"])
    with pytest.raises(ValueError, match=message):
        tfgen.get_model(name, "document", image_shape=(32, 32, 3))  # the former name
