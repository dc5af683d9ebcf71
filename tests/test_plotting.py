"""Plotting helpers: grids written to PNG, and the figures the notebooks draw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfgen import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_tile_places_each_image_in_row_major_order():
    images = np.stack([np.full((2, 3, 1), i / 10) for i in range(5)])
    grid = plotting.tile(images, ncols=2, pad=1)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 1)
    # image 3 is row 1, column 1
    np.testing.assert_allclose(grid[4:6, 5:8, 0], 0.3)
    # the missing sixth cell and the padding stay white
    np.testing.assert_allclose(grid[7:9, 5:8, 0], 1.0)
    assert grid[0, 0, 0] == 1.0


def test_save_grid_writes_a_png(tmp_path):
    path = tmp_path / "grid.png"
    plotting.save_grid(np.zeros((4, 28, 28, 1)), path, ncols=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["grid.jpg", "grid.JPEG"])
def test_save_grid_writes_a_real_jpeg_for_a_jpeg_name(tmp_path, name):
    from PIL import Image

    path = tmp_path / name
    plotting.save_grid(np.full((4, 28, 28, 1), 0.5), path, ncols=2)
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"  # the JPEG start-of-image marker
    assert Image.open(path).format == "JPEG"


def test_save_grid_refuses_an_extension_it_cannot_write_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"^cannot write a grid to '.*grid\.gif': use a file name ending in "
                                         r"\.png, \.jpg, \.jpeg$"):
        plotting.save_grid(np.zeros((1, 4, 4, 1)), tmp_path / "grid.gif")
    assert not (tmp_path / "grid.gif").exists()


def test_row_labels_add_a_left_margin_with_dark_text_in_each_row():
    images = np.ones((6, 8, 8, 1))  # white images: only the labels are dark
    plain = plotting.render_grid(images, ncols=3, scale=2)
    labelled = plotting.render_grid(images, ncols=3, scale=2, row_labels=["7", "sandal"])
    margin = labelled.shape[1] - plain.shape[1]
    assert labelled.shape[0] == plain.shape[0] and margin > 0
    np.testing.assert_array_equal(labelled[:, margin:], plain)
    half = plain.shape[0] // 2
    assert (labelled[:half, :margin] < 128).any() and (labelled[half:, :margin] < 128).any()
    wide = plotting.render_grid(images, ncols=3, scale=2, row_labels=["7", "a much longer class name"])
    assert wide.shape[1] > labelled.shape[1]  # the margin fits the longest name


def test_class_row_labels_name_each_class_row_only_for_one_row_per_class_grids():
    class Conditional:
        num_classes, accepts_labels, requires_labels = 3, True, True

    class Unconditional:
        num_classes, accepts_labels, requires_labels = 3, False, False

    assert plotting.class_row_labels(Conditional()) == ["0", "1", "2"]
    assert plotting.class_row_labels(Conditional(), class_names=["cat", "dog", "fox"]) == ["cat", "dog", "fox"]
    assert plotting.class_row_labels(Conditional(), labels=np.array([1, 1])) is None  # rows are not classes
    assert plotting.class_row_labels(Unconditional()) is None
    with pytest.raises(ValueError, match="must name the model's 3 classes, got 2"):
        plotting.class_row_labels(Conditional(), class_names=["cat", "dog"])


def test_save_grid_leaves_the_matplotlib_backend_alone(tmp_path):
    """Sample grids are saved during `fit` (tfgen.train): switching a Jupyter kernel's
    inline backend to Agg there made every later figure of the notebook disappear."""
    plt.switch_backend("svg")
    try:
        plotting.save_grid(np.zeros((2, 4, 4, 1)), tmp_path / "grid.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        plt.switch_backend("Agg")


def test_show_grid_draws_the_tiled_images():
    rng = np.random.default_rng(0)
    images = rng.random((6, 5, 5, 1)).astype(np.float32)
    fig = plotting.show_grid(images, ncols=3, title="samples")
    (ax,) = fig.axes
    shown = ax.get_images()[0].get_array()
    np.testing.assert_allclose(shown, plotting.tile(images, 3)[..., 0])
    assert ax.get_title() == "samples"
    fig = plotting.show_grid(images, ncols=3, pad=0)
    assert fig.axes[0].get_images()[0].get_array().shape == (2 * 5, 3 * 5)


def test_show_rows_one_axes_per_row_with_titles():
    rows = [np.zeros((4, 6, 6, 1)), np.ones((2, 6, 6, 1))]
    fig = plotting.show_rows(rows, row_titles=["a", "b"], col_titles=["t0", "t1", "t2", "t3"], title="x")
    assert len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["a", "b"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["t0", "t1", "t2", "t3"]
    # the short row is drawn at the same scale as the long one: same x range
    assert fig.axes[0].get_xlim() == fig.axes[1].get_xlim()
    # titles may be any sequence, e.g. a NumPy array of class labels
    fig = plotting.show_rows(rows, col_titles=np.arange(4))
    assert [t.get_text() for t in fig.axes[0].texts] == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="expected 2 titles"):
        plotting.show_rows(rows, row_titles=["only one"])
    with pytest.raises(ValueError, match="image arrays"):
        plotting.show_rows([np.zeros((6, 6))])


def test_plot_history_pairs_validation_curves_dashed_in_the_same_colour():
    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.2, 2.5, 2.0], "kl": [1.0, 2.0, 3.0]}
    fig = plotting.plot_history(history, keys=["loss"])
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["loss", "val_loss"]
    assert lines[1].get_linestyle() == "--" and lines[0].get_color() == lines[1].get_color()
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines[1].get_ydata(), [3.2, 2.5, 2.0])
    fig = plotting.plot_history(history)
    assert {line.get_label() for line in fig.axes[0].get_lines()} == {"loss", "val_loss", "kl"}
    with pytest.raises(KeyError, match="no series"):
        plotting.plot_history(history, keys=["d_loss"])


def test_plot_latent_map_one_colour_per_class():
    z = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], np.float32)
    labels = np.array([0, 1, 1, 2])
    fig = plotting.plot_latent_map(z, labels)
    ax = fig.axes[0]
    assert [c.get_offsets().shape[0] for c in ax.collections] == [1, 2, 1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="latent_dim=2"):
        plotting.plot_latent_map(np.zeros((4, 3)), labels)
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_latent_map(z, labels[:3])


def test_latent_grid_is_at_gaussian_quantiles_and_oriented_like_a_scatter_plot():
    z = plotting.latent_grid(3, coverage=0.95)
    assert z.shape == (9, 2) and z.dtype == np.float32
    # the 2.5 % and 97.5 % quantiles of N(0, 1) are ±1.95996
    np.testing.assert_allclose(z[:3, 0], [-1.959964, 0.0, 1.959964], atol=1e-5)  # z1 grows along a row
    np.testing.assert_allclose(z[::3, 1], [1.959964, 0.0, -1.959964], atol=1e-5)  # z2 falls down the rows
    with pytest.raises(ValueError):
        plotting.latent_grid(1)
    with pytest.raises(ValueError):
        plotting.latent_grid(5, coverage=1.0)


def test_interpolate_linear_and_slerp_against_hand_values():
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    lin = plotting.interpolate(e1, e2, steps=3, method="linear")
    np.testing.assert_allclose(lin, [[1, 0], [0.5, 0.5], [0, 1]])
    sl = plotting.interpolate(e1, e2, steps=3)
    np.testing.assert_allclose(sl, [[1, 0], [np.sqrt(0.5), np.sqrt(0.5)], [0, 1]], atol=1e-6)
    # slerp keeps the norm between equal-norm endpoints; the straight line shrinks it
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=64), rng.normal(size=64)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    norms = np.linalg.norm(plotting.interpolate(a, b, 9), axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-5)
    assert np.linalg.norm(plotting.interpolate(a, b, 9, "linear")[4]) < 0.8 * np.linalg.norm(a)
    # parallel endpoints fall back to the straight line instead of dividing by sin(0)
    np.testing.assert_allclose(plotting.interpolate(e1, 2 * e1, 3), [[1, 0], [1.5, 0], [2, 0]])


def test_interpolate_batches_are_row_major():
    z0, z1 = np.zeros((2, 4)), np.ones((2, 4))
    z1[1] *= 3
    out = plotting.interpolate(z0, z1, steps=5, method="linear")
    assert out.shape == (10, 4)
    np.testing.assert_allclose(out[4], 1.0)  # end of row 0
    np.testing.assert_allclose(out[9], 3.0)  # end of row 1
    with pytest.raises(ValueError):
        plotting.interpolate(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        plotting.interpolate(np.zeros(3), np.ones(3), method="cubic")


def test_raster_frames_reveal_pixels_in_raster_order():
    images = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3, 1) / 10
    frames = plotting.raster_frames(images, counts=[0, 4, 6], fill=-1)
    assert frames.shape == (2, 3, 2, 3, 1)
    assert np.all(frames[:, 0] == -1)  # nothing drawn yet
    # after 4 pixels: the whole first row and the first pixel of the second
    np.testing.assert_allclose(frames[1, 1, ..., 0], [[0.6, 0.7, 0.8], [0.9, -1, -1]])
    np.testing.assert_allclose(frames[:, 2], images)  # all 6 drawn


def test_a_class_grid_is_at_most_ten_columns_with_one_block_of_rows_per_class_titled_on_its_first_row():
    class Conditional:
        num_classes, accepts_labels, requires_labels = 3, True, True

        def sample(self, n, labels=None, seed=None):
            return np.broadcast_to(np.asarray(labels, np.float32)[:, None, None, None] / 4, (n, 2, 2, 1))

    images, ncols = plotting.sample_for_grid(Conditional(), 75, seed=0)  # 25 per class
    assert ncols == 9 and len(images) == 3 * 27  # 3 rows of 9 per class, 2 blank tiles at each block's end
    blocks = images.reshape(3, 27, 2, 2, 1)
    for c in range(3):
        np.testing.assert_array_equal(blocks[c, :25], c / 4)  # the class's own samples, in its own rows
        np.testing.assert_array_equal(blocks[c, 25:], 1.0)  # blank (white, like the padding)
    titles = plotting.class_row_labels(Conditional(), class_names=["flags", "food", "smileys"], n=75)
    assert titles == ["flags", "", "", "food", "", "", "smileys", "", ""]
    grid = plotting.render_grid(images, ncols, scale=1, row_labels=titles)
    assert grid.shape[0] == 9 * 3 + 1  # nine rows of 2-pixel images and 1-pixel padding
    images, ncols = plotting.sample_for_grid(Conditional(), 12, seed=0)  # 4 per class: one row each
    assert ncols == 4 and len(images) == 12
