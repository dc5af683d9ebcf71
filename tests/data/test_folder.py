"""`folder:DIR` datasets: layout, labels, decoders, colour modes, alpha, sizes, the held-out split, errors."""

import gzip
import warnings

import numpy as np
import pytest
from PIL import Image

from tfgen import data
from tfgen.checks import parse_image_size
from tfgen.checks import UnknownNameError
from tfgen.data.messages import DataWarning

RNG = np.random.default_rng(0)


def noise(height=6, width=6, channels=3):
    shape = (height, width) if channels == 1 else (height, width, channels)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def save(path, pixels, mode=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels) if mode is None else Image.fromarray(pixels).convert(mode)
    image.save(path, **kwargs)
    return path


def make_classes(root, counts, suffix=".png", size=6):
    """A labelled folder: {class name: number of RGB images}."""
    for name, n in counts.items():
        for i in range(n):
            save(root / name / f"{i:03d}{suffix}", noise(size, size))
    return f"folder:{root}"


def load_both(name, **options):
    return [data.load_examples(name, split, **options) for split in ("train", "test")]


def pixels(name, **options):
    """All images of a one-image folder's train split as uint8 (the split holds it: nothing to hold out)."""
    return data.load_examples(name, "train", **options).images.numpy()


# ---------------------------------------------------------------------- layout and labels
def test_class_folders_give_sorted_labels_names_and_every_file_once(tmp_path):
    name = make_classes(tmp_path, {"dog": 10, "cat": 10, "emu": 20})
    save(tmp_path / "cat" / "nested" / "deeper" / "x.png", noise())  # found at any depth inside a class
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    save(tmp_path / "dog" / ".hidden.png", noise())  # hidden: ignored
    train, test = load_both(name)
    assert train.info.class_names == ("cat", "dog", "emu") and train.info.num_classes == 3
    assert train.info.image_shape == (6, 6, 3)
    assert train.info.num_examples + test.info.num_examples == 41
    counts = lambda ex: np.bincount(ex.labels.numpy(), minlength=3)
    # Stratified: 10% of each class held out (11 cat images -> round(1.1) = 1).
    np.testing.assert_array_equal(counts(test), [1, 1, 2])
    np.testing.assert_array_equal(counts(train), [10, 9, 18])
    # The training order mixes the classes (so that `limit` samples all of them).
    assert len(set(train.labels.numpy()[:10])) > 1


def test_flat_folder_is_unlabelled_and_conditional_models_are_refused(tmp_path):
    for i in range(12):
        save(tmp_path / f"{i}.png", noise())
    train, test = load_both(f"folder:{tmp_path}")
    assert train.info.num_classes == 0 and train.info.class_names == ()
    assert train.info.num_examples == 11 and test.info.num_examples == 1
    assert not train.labels.numpy().any()
    with pytest.raises(ValueError, match="cgan needs class labels, but dataset 'folder:.*' has none.*one subfolder"):
        data.require_labels(train.info, "cgan")
    data.require_labels(data.load_examples("mnist_bundled", limit=10).info, "cgan")  # labelled: no error


def test_split_is_reproducible_disjoint_and_independent_of_the_seed(tmp_path):
    name = make_classes(tmp_path, {"a": 15, "b": 15})
    first = [data.load_arrays(name, split)[0] for split in ("train", "test")]
    again = [data.load_arrays(name, split)[0] for split in ("train", "test")]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    train_rows = {row.tobytes() for row in first[0]}
    assert len(train_rows) == 26 and not any(row.tobytes() in train_rows for row in first[1])
    # `seed` shuffles batches; it never moves an image between the splits.
    test_a = data.load(name, "test", 8, seed=1, shuffle=True)
    test_b = data.load(name, "test", 8, seed=2, shuffle=True)
    as_set = lambda ds: {row.tobytes() for x, _ in ds for row in x.numpy()}
    assert as_set(test_a) == as_set(test_b) == {row.tobytes() for row in first[1]}
    # A larger holdout moves images to the test split, stratified.
    _, test = load_both(name, holdout=0.4)
    np.testing.assert_array_equal(np.bincount(test.labels.numpy()), [6, 6])


def test_limit_decodes_only_the_first_images_of_the_split(tmp_path):
    name = make_classes(tmp_path, {"a": 10, "b": 10})
    full = data.load_arrays(name, "train")[0]
    np.testing.assert_array_equal(data.load_arrays(name, "train", limit=5)[0], full[:5])


def test_load_batches_floats_and_shuffles_by_seed(tmp_path):
    name = make_classes(tmp_path, {"a": 20, "b": 20})
    ds, info = data.load(name, "train", batch_size=8, seed=3, with_info=True)
    images, labels = next(iter(ds))
    assert images.shape == (8, 6, 6, 3) and images.dtype.name == "float32" and labels.dtype.name == "int32"
    assert 0.0 <= images.numpy().min() and images.numpy().max() <= 1.0
    order = lambda seed: np.concatenate([y.numpy() for _, y in data.load(name, "train", 36, seed=seed)])
    np.testing.assert_array_equal(order(3), order(3))
    stored = data.load_arrays(name, "train")[0]
    np.testing.assert_allclose(np.sort(stored.ravel()), np.sort(np.concatenate([x.numpy() for x, _ in ds]).ravel()))


# ---------------------------------------------------------------------- formats and colour modes
def test_png_jpeg_gif_bmp_decode_to_their_pixels(tmp_path):
    rgb = noise(5, 7)
    for suffix in ("png", "bmp"):  # lossless: exact pixels
        save(tmp_path / suffix / f"x.{suffix}", rgb)
        np.testing.assert_array_equal(pixels(f"folder:{tmp_path / suffix}")[0], rgb)
    ramp = np.stack([*np.meshgrid(np.arange(16) * 16, np.arange(16) * 8, indexing="ij"), np.full((16, 16), 90)], -1)
    save(tmp_path / "jpg" / "x.jpg", ramp.astype(np.uint8), quality=95, subsampling=0)  # lossy: close to the smooth original
    assert np.abs(pixels(f"folder:{tmp_path / 'jpg'}")[0].astype(int) - ramp).max() <= 8
    save(tmp_path / "gif" / "x.gif", rgb, "P")  # a palette: the GIF's own colours
    expected = np.asarray(Image.open(tmp_path / "gif" / "x.gif").convert("RGB"))
    np.testing.assert_array_equal(pixels(f"folder:{tmp_path / 'gif'}")[0], expected)


def test_gif_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((4, 4, 3), value, np.uint8)) for value in (200, 30)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert abs(int(pixels(f"folder:{tmp_path}").mean()) - 200) <= 1


def test_palette_bmp_is_decoded_through_its_palette_not_as_grey_indices(tmp_path):
    rgb = noise(4, 4)
    save(tmp_path / "p.bmp", rgb, "P")
    expected = np.asarray(Image.open(tmp_path / "p.bmp").convert("RGB"))
    np.testing.assert_array_equal(pixels(f"folder:{tmp_path}")[0], expected)


def test_channels_default_to_the_data_grey_when_every_file_is_grey(tmp_path):
    grey = noise(4, 4, channels=1)
    save(tmp_path / "a.png", grey)
    save(tmp_path / "b.gif", grey, "P")  # a palette of greys counts as grey
    save(tmp_path / "c.png", grey, "LA")
    out = data.load_examples(f"folder:{tmp_path}", "train", holdout=0.01)
    assert out.info.image_shape == (4, 4, 1)
    save(tmp_path / "d.png", noise(4, 4))  # one colour image makes the dataset colour
    assert data.load_examples(f"folder:{tmp_path}", "train", holdout=0.01).info.image_shape == (4, 4, 3)


def test_channel_conversions(tmp_path):
    rgb = noise(4, 4)
    save(tmp_path / "rgb" / "x.png", rgb)
    grey = pixels(f"folder:{tmp_path / 'rgb'}", channels=1)[0, ..., 0]
    luma = rgb.astype(np.float64) @ [0.2989, 0.5870, 0.1140]  # ITU-R BT.601, as tf.image.rgb_to_grayscale
    assert np.abs(grey - luma).max() <= 0.51
    save(tmp_path / "grey" / "x.png", rgb[..., 0])
    np.testing.assert_array_equal(pixels(f"folder:{tmp_path / 'grey'}", channels=3)[0],
                                  np.repeat(rgb[..., :1], 3, axis=-1))
    assert data.load_examples(f"folder:{tmp_path / 'grey'}", "train").info.image_shape == (4, 4, 1)


# ---------------------------------------------------------------------- alpha
def composite(rgb, alpha, background):
    a = alpha[..., None].astype(np.float64) / 255.0
    return np.rint(rgb * a + np.asarray(background, np.float64) * (1 - a)).astype(np.uint8)


def test_rgba_is_composited_onto_white_or_a_chosen_background(tmp_path):
    rgba = noise(4, 4, channels=4)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255  # one transparent pixel, one opaque
    save(tmp_path / "x.png", rgba)
    name = f"folder:{tmp_path}"
    white = pixels(name)[0]
    np.testing.assert_array_equal(white, composite(rgba[..., :3], rgba[..., 3], (255, 255, 255)))
    assert white[0, 0].tolist() == [255, 255, 255] and white[0, 1].tolist() == rgba[0, 1, :3].tolist()
    np.testing.assert_array_equal(pixels(name, background="black")[0], composite(rgba[..., :3], rgba[..., 3], (0,) * 3))
    np.testing.assert_array_equal(pixels(name, background=(10, 20, 30))[0],
                                  composite(rgba[..., :3], rgba[..., 3], (10, 20, 30)))


def test_alpha_of_palette_grey_gif_and_bmp_images(tmp_path):
    palette = np.zeros((2, 2, 3), np.uint8)
    palette[0, 0] = (0, 0, 255)  # index 0: transparent
    palette[1, 1] = (255, 0, 0)
    for suffix in ("png", "gif"):
        image = Image.fromarray(palette).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        (tmp_path / suffix).mkdir()
        image.save(tmp_path / suffix / f"x.{suffix}", transparency=image.getpixel((0, 0)))
        out = pixels(f"folder:{tmp_path / suffix}", background="white")[0]
        assert out[0, 0].tolist() == [255, 255, 255], suffix  # the transparent colour, not blue
        assert out[1, 1].tolist() == [255, 0, 0], suffix
    la = np.stack([np.full((2, 2), 100, np.uint8), np.array([[0, 255], [128, 255]], np.uint8)], axis=-1)
    save(tmp_path / "la" / "x.png", la, "LA")
    out = pixels(f"folder:{tmp_path / 'la'}", background="black")
    assert out.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(out[0, ..., 0], [[0, 100], [50, 100]])
    rgba = noise(3, 3, channels=4)
    save(tmp_path / "bmp" / "x.bmp", rgba)  # Pillow writes a 32-bit BMP with alpha
    expected = np.asarray(Image.open(tmp_path / "bmp" / "x.bmp").convert("RGBA"))
    np.testing.assert_array_equal(pixels(f"folder:{tmp_path / 'bmp'}")[0],
                                  composite(expected[..., :3], expected[..., 3], (255, 255, 255)))


# ---------------------------------------------------------------------- sizes
def test_mixed_sizes_need_image_size_and_are_centre_cropped(tmp_path):
    wide = np.zeros((4, 8, 3), np.uint8)
    wide[:, 2:6] = 200  # the centre 4 columns
    save(tmp_path / "wide.png", wide)
    save(tmp_path / "square.png", noise(4, 4))
    name = f"folder:{tmp_path}"
    with pytest.raises(ValueError, match=r"images have 2 different sizes \(height x width: (4x8|4x4): 1 file\(s\), (4x8|4x4): 1 file\(s\).*"
                                         r"choose one with image_size \(--image-size\)"):
        data.load_examples(name, "train")
    out = data.load_arrays(name, "train", image_size=4, holdout=0.01)[0]
    assert out.shape == (2, 4, 4, 3)
    assert any(np.all(image == 200 / 255.0) for image in out)  # the wide image: its centre, not squeezed
    tall = data.load_examples(name, "train", image_size=(6, 3), holdout=0.01)
    assert tall.info.image_shape == (6, 3, 3)


def test_downscaling_averages(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 255
    save(tmp_path / "x.png", image)
    out = pixels(f"folder:{tmp_path}", image_size=4)[0]
    assert out.shape == (4, 4, 3) and out[:, 0].min() == 255 and out[:, -1].max() == 0


@pytest.mark.parametrize("text, size", [("32", (32, 32)), ("48x64", (48, 64)), (" 5 X 7 ", (5, 7)), (None, None),
                                        (32, (32, 32)), ((48, 64), (48, 64)), ([5, 7], (5, 7))])
def test_parse_image_size(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "32x", "x32", "-4", "3x0", "big"])
def test_parse_image_size_refuses(text):
    with pytest.raises(ValueError, match="image size must be N or HxW|image_size must be a positive integer"):
        parse_image_size(text)


# ---------------------------------------------------------------------- unreadable files
def test_a_corrupt_file_is_named_or_skipped_with_one_warning(tmp_path):
    name = make_classes(tmp_path, {"a": 10, "b": 10})
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match=r"cannot read image b/broken.png \(.*\); fix or remove it.*--skip-corrupt"):
        data.load_examples(name, "train")
    with pytest.warns(DataWarning, match=r"skipped 1 unreadable image file\(s\): b/broken.png"):
        train = data.load_examples(name, "train", skip_corrupt=True)
    assert train.info.num_examples == 18


def test_a_truncated_file_is_found_when_decoding(tmp_path):
    # Its header is fine (the size is known), its pixels are cut off.
    save(tmp_path / "good.png", noise(16, 16))
    save(tmp_path / "cut.png", noise(16, 16))
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:120])
    with pytest.raises(ValueError, match=r"cannot read image cut.png"):
        data.load_examples(f"folder:{tmp_path}", "train", holdout=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = data.load_examples(f"folder:{tmp_path}", "train", holdout=0.01, skip_corrupt=True)
    assert out.info.num_examples == 1
    assert [str(w.message).count("\n") for w in caught if w.category is DataWarning] == [0]
    (tmp_path / "good.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match=r"cannot read image cut.png .* \(and 1 more\)"):  # nothing left to load
        data.load_examples(f"folder:{tmp_path}", "train", holdout=0.01, skip_corrupt=True)


# ---------------------------------------------------------------------- bad folders and options
def bad_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("hi")
    make_classes(tmp_path / "emptyclass", {"a": 2})
    (tmp_path / "emptyclass" / "b").mkdir()
    make_classes(tmp_path / "mixed", {"a": 2})
    save(tmp_path / "mixed" / "loose.png", noise())
    (tmp_path / "file.png").write_bytes(b"")
    return {
        "missing": (tmp_path / "nope", "folder does not exist"),
        "a file": (tmp_path / "file.png", "not a folder"),
        "empty": (tmp_path / "empty", r"folder is empty \(expected image files .png, .jpg"),
        "no images": (tmp_path / "text", r"no image files \(.png.*\) in it; it holds 1 other file\(s\), e.g. readme.txt"),
        "empty class": (tmp_path / "emptyclass", "class folder 'b' holds no image files"),
        "files and folders": (tmp_path / "mixed", r"holds both image files \(1, e.g. loose.png\) and subfolders \(a\)"),
    }


def test_bad_folders_are_one_line_errors(tmp_path):
    for case, (path, message) in bad_folders(tmp_path).items():
        with pytest.raises(ValueError, match=message) as err:
            data.load(f"folder:{path}", "train")
        assert "\n" not in str(err.value) and str(err.value).startswith(f"folder:{path}: "), case


@pytest.mark.parametrize("options, message", [
    (dict(image_size=0), "image_size must be a positive integer or a .height, width. pair"),
    (dict(image_size=-3), "image_size must be a positive integer"),
    (dict(image_size=(4, 0)), "image_size must be a positive integer, got 0"),
    (dict(image_size="32px"), "image size must be N or HxW with positive integers"),
    (dict(channels=2), r"channels must be 1 \(grey\) or 3 \(RGB\), got 2"),
    (dict(channels=4), "channels must be 1"),
    (dict(background="pink"), "background must be 'white', 'black' or an"),
    (dict(background=(1, 2, 300)), "background must be"),
    (dict(holdout=0.0), r"holdout must be a number in \(0, 1\), got 0.0"),
    (dict(holdout=1), r"holdout must be a number in \(0, 1\)"),
    (dict(split="validation"), "unknown split .validation.; choose from train, test"),
])
def test_bad_options(tmp_path, options, message):
    name = make_classes(tmp_path, {"a": 3})
    split = options.pop("split", "train")
    with pytest.raises(ValueError, match=message):
        data.load_examples(name, split, **options)


def test_options_convert_array_datasets_too():
    out = data.load_examples("mnist_bundled", "train", limit=4, image_size=32, channels=3)
    assert out.info.image_shape == (32, 32, 3) and out.info.num_examples == 4
    images = out.images.numpy()
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # grey made RGB
    digits, _ = data.load_bundled("train")
    assert abs(images.mean() - digits[:4].mean()) < 3  # the same digits, enlarged (bright strokes, dark ground)
    same = data.load_examples("mnist_bundled", "train", limit=4, image_size=28, channels=1).images.numpy()
    np.testing.assert_array_equal(same[..., 0], digits[:4])  # as stored: untouched


# ---------------------------------------------------------------------- npz and IDX
def test_npz_images_with_and_without_labels(tmp_path):
    images = RNG.integers(0, 256, (40, 5, 5, 3), dtype=np.uint8)
    labels = np.repeat([0, 1], 20)
    np.savez(tmp_path / "lab.npz", images=images, labels=labels)
    train, test = load_both(f"npz:{tmp_path / 'lab.npz'}")
    assert train.info.num_classes == 2 and train.info.image_shape == (5, 5, 3)
    np.testing.assert_array_equal(np.bincount(test.labels.numpy()), [2, 2])
    np.savez(tmp_path / "float.npz", images=images[..., 0] / 255.0)  # float in [0, 1], no labels, 3-D
    train, test = load_both(f"npz:{tmp_path / 'float.npz'}")
    assert train.info.num_classes == 0 and train.info.image_shape == (5, 5, 1)
    assert train.info.num_examples + test.info.num_examples == 40
    rows = {row.tobytes() for row in images[..., :1]}
    assert all(row.tobytes() in rows for row in train.images.numpy())
    np.savez(tmp_path / "split.npz", x_train=images[:30], y_train=labels[:30], x_test=images[30:], y_test=labels[30:])
    train, test = load_both(f"npz:{tmp_path / 'split.npz'}")
    np.testing.assert_array_equal(test.images.numpy(), images[30:])


@pytest.mark.parametrize("arrays, message", [
    (dict(images=np.zeros((4, 5), np.uint8)), r"'images' must have shape \(N, H, W\) or \(N, H, W, C\)"),
    (dict(images=np.zeros((4, 5, 5, 2), np.uint8)), "C = 1 or 3, got"),
    (dict(images=np.full((4, 5, 5), 2.0)), r"float but not in \[0, 1\]"),
    (dict(images=np.zeros((4, 5, 5), np.int64)), "must be uint8 .0-255. or float"),
    (dict(images=np.zeros((4, 5, 5), np.uint8), labels=np.zeros(3, int)), "'labels' must be 4 integers >= 0"),
    (dict(images=np.zeros((4, 5, 5), np.uint8), labels=-np.ones(4, int)), "'labels' must be 4 integers >= 0"),
    (dict(pixels=np.zeros((4, 5, 5), np.uint8)), "expected an array 'images'.*found pixels"),
])
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        data.load_examples(f"npz:{tmp_path / 'x.npz'}", "train")


def test_npz_missing_or_not_npz(tmp_path):
    with pytest.raises(ValueError, match="npz:.*nope.npz: file does not exist"):
        data.load_examples(f"npz:{tmp_path / 'nope.npz'}")
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        data.load_examples(f"npz:{tmp_path / 'bad.npz'}")


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_colour_images_and_labels_that_skip_classes(tmp_path):
    images = RNG.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(12) % 5 + 10  # 10..14: classes 0..9 empty
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx4-ubyte.gz", images)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    with pytest.warns(DataWarning, match=r"split 'train': no examples of class\(es\) 0-9 of labels 0-14: "
                                         r"a model trained on it has 15 classes, 10 of them empty"):
        train = data.load_examples(f"idx:{tmp_path}", "train")
    assert train.info.image_shape == (4, 4, 3) and train.info.num_classes == 15
    np.testing.assert_array_equal(train.images.numpy(), images)


def test_a_path_without_its_prefix_names_the_prefix(tmp_path):
    with pytest.raises(UnknownNameError, match=f"unknown dataset '{tmp_path}': for a folder of images write folder:"):
        data.load_examples(str(tmp_path))
    with pytest.raises(UnknownNameError, match="a path needs a prefix: folder:DIR .images., idx:DIR .IDX files. or npz:"):
        data.load_examples(str(tmp_path / "arrays.npz"))
