"""`python -m benchmarks.completion`'s scoring: class accuracy per completion, the known-region error, the masked-input
baseline, the chunked timing (a fake clock), and one family's entry on tiny models with a fake evaluator."""

import numpy as np
import pytest

import tfgen
from benchmarks import completion
from tfgen.complete import check_mask, mask_from_spec


class FakeEvaluator:
    """Calls an image the class of its mean brightness band: enough to check what the benchmark counts."""
    kind, accuracy, labelled = "classifier", 1.0, True

    def predict_labels(self, images):
        return (np.asarray(images).reshape(len(images), -1).mean(axis=1) > 0.5).astype(np.int32)


def test_each_completion_counts_against_its_own_images_class():
    predicted = np.array([[1, 1, 0], [2, 0, 0]])  # image 0 (class 1): 2 of 3; image 1 (class 0): 2 of 3
    assert completion.class_accuracy(predicted, np.array([1, 0])) == pytest.approx(4 / 6)


def test_known_mse_counts_only_the_known_sub_pixels():
    images = np.zeros((2, 2, 2, 1), np.float32)
    mask = np.array([[1, 1], [0, 0]], np.float32)[..., None]
    completions = np.ones((2, 3, 2, 2, 1), np.float32)  # wrong by 1 everywhere
    completions[:, :, 0] = 0.5  # the known row: wrong by 0.5
    assert completion.known_mse(completions, images, mask) == pytest.approx(0.25)
    completions[:, :, 0] = 0.0
    assert completion.known_mse(completions, images, mask) == 0.0


def test_the_masked_input_puts_the_background_in_the_hole():
    images = np.zeros((3, 4, 4, 3), np.float32)
    images[..., 2] = 1.0
    images[0, 0, 0] = 0.3  # a pixel off the background does not move the median
    fill = completion.background(images)
    assert fill.tolist() == [0.0, 0.0, 1.0]
    mask = check_mask(mask_from_spec("bottom", (4, 4)), images.shape)
    masked = completion.masked_input(images + 0.5, mask, fill)
    assert (masked[:, 2:] == fill).all() and (masked[:, :2] == images[:, :2] + 0.5).all()


def test_default_masks_hide_the_bottom_of_grey_images_and_a_centre_box_of_colour_ones():
    assert completion.default_mask_spec((28, 28, 1)) == "bottom"
    assert completion.default_mask_spec((32, 32, 3)) == "box:8,8,16,16"


def test_chunks_are_padded_to_one_shape_and_only_the_later_calls_are_timed():
    shapes, ticks = [], iter([0.0, 10.0, 10.0, 12.0, 12.0, 14.0])  # first call 10 s, then 2 s per call

    def complete(chunk, labels, k):
        shapes.append((len(chunk), None if labels is None else len(labels), k))
        return chunk[:, None] * 2

    images = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    out, first, per_image = completion.timed_chunks(complete, images, np.arange(5), 2, clock=lambda: next(ticks))
    assert shapes == [(2, 2, 0), (2, 2, 1), (2, 2, 2)]  # 5 images: the last chunk padded to 2
    assert out.shape == (5, 1, 1, 1, 1) and (out[:, 0] == images * 2).all()
    assert first == 10.0 and per_image == pytest.approx(4.0 / 4)


def test_a_vae_entry_keeps_the_known_pixels_and_a_gan_says_why_it_cannot():
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    labels = FakeEvaluator().predict_labels(images)
    mask = check_mask(mask_from_spec("bottom", (8, 8)), images.shape)
    vae = tfgen.get_model("vae", preset="tiny", image_shape=(8, 8, 1))
    entry = completion.measure(vae, images, labels, mask, FakeEvaluator(), completions=2, batch=2,
                               options={"iterations": 2})
    assert entry["known_mse"] == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= entry["accuracy"] <= 1.0 and entry["images"] == 4 and entry["completions_per_image"] == 2
    assert entry["method"].startswith("latent chain") and not entry["given_class"]
    entry.update(completion.baselines(images, labels, mask, FakeEvaluator()), grid="samples/x.png",
                 model={"family": "vae"})
    assert entry["original_accuracy"] == 1.0

    gan = tfgen.get_model("gan", preset="tiny", image_shape=(8, 8, 1))
    refusal = completion.measure(gan, images, labels, mask, FakeEvaluator())
    assert "no encoder" in refusal["cannot_complete"]
    run = {"date": "2026-01-01 12:00", "command": "python -m benchmarks.completion runs/vae runs/gan",
           "machine": {"cpus": 2, "cpu": "a CPU", "load_average_1min": 1.5}}
    entry.update(run)
    refusal.update(run)
    table = completion.markdown({"dataset": "mnist_bundled", "data_options": {}, "mask": "bottom",
                                 "hidden_fraction": 0.5, "evaluator": {"kind": "classifier", "accuracy": 0.99},
                                 "entries": {"vae": entry, "gan": refusal}})
    assert "| gan | cannot complete: a GAN has no encoder" in table
    assert "| vae | latent chain (Rezende et al. 2014) | 4 × 2 |" in table
    assert table.index("| vae |") < table.index("| gan |")  # families that complete first
    assert table.count("Machine: 2 × a CPU, 1-minute load 1.5–1.5") == 1  # one line per command


def test_an_autoregressive_bottom_completion_is_named_exact():
    model = tfgen.get_model("pixelcnn", preset="tiny", image_shape=(4, 4, 1))
    assert completion.method(model, check_mask(mask_from_spec("bottom", (4, 4)), (1, 4, 4, 1))).endswith("exact")
    assert "approximate" in completion.method(model, check_mask(mask_from_spec("top", (4, 4)), (1, 4, 4, 1)))


def test_n_for_parses_family_counts_and_refuses_bad_ones():
    assert completion.parse_counts("pixelcnn=50,pixel_transformer=20") == {"pixelcnn": 50, "pixel_transformer": 20}
    with pytest.raises(ValueError, match="FAMILY=N"):
        completion.parse_counts("pixelcnn=0")
