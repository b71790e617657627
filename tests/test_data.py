"""nasplay.data: sources, the decode cache, stratified subsets and the tf.data pipeline."""

import pickle

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from nasplay.data import sources as data
from nasplay.data import decode, DataError, Dataset, load_source, make_dataset, stratified_split
from nasplay.errors import UserError


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own decode cache, never the user's ~/.cache/nasplay."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("NASPLAY_CACHE", str(path))
    return path


def images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def write_folder(root, classes=("cat", "dog", "emu"), per_class=4, size=8, suffix=".png"):
    """An image folder root/<class>/<i><suffix>; returns the images in load order."""
    written = []
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images(per_class, size, seed=c)):
            Image.fromarray(image).save(root / name / f"{i:03d}{suffix}")
            written.append(image)
    return np.stack(written)


def write_batch(path, x, y):
    """A batch in the official CIFAR-10 python format (channel-major rows, bytes keys)."""
    batch = {b"batch_label": b"testing batch", b"labels": [int(v) for v in y],
             b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
             b"filenames": [f"{i}.png".encode() for i in range(len(x))]}
    with open(path, "wb") as f:
        pickle.dump(batch, f)


# -- sources -------------------------------------------------------------------------------------

def test_python_batches_are_read_in_the_official_format(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    x1, x2, xt = images(6, 32, seed=1), images(4, 32, seed=2), images(3, 32, seed=3)
    write_batch(folder / "data_batch_1", x1, [0, 1, 2, 3, 4, 5])
    write_batch(folder / "data_batch_2", x2, [6, 7, 8, 9])
    write_batch(folder / "test_batch", xt, [9, 0, 1])
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in data.CIFAR10_CLASSES]}, f)

    train = load_source(str(tmp_path))  # finds cifar-10-batches-py/ inside
    np.testing.assert_array_equal(train.x, np.concatenate([x1, x2]))
    np.testing.assert_array_equal(train.y, np.arange(10))
    assert train.classes == data.CIFAR10_CLASSES and train.y.dtype == np.int64
    test = load_source(str(folder), split="test")
    np.testing.assert_array_equal(test.x, xt)
    np.testing.assert_array_equal(test.y, [9, 0, 1])


def test_corrupt_python_batch_is_a_data_error(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DataError, match="data_batch_1"):
        load_source(str(tmp_path))


def test_image_folder_with_train_and_test_splits(tmp_path):
    expected = write_folder(tmp_path / "train")
    write_folder(tmp_path / "test", classes=("dog",), per_class=2)

    train = load_source(str(tmp_path))
    assert train.classes == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(train.x, expected)  # PNG is lossless
    np.testing.assert_array_equal(train.y, np.repeat([0, 1, 2], 4))
    test = load_source(str(tmp_path), split="test")
    assert test.classes == train.classes and test.x.shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(test.y, [1, 1])  # labels follow the training classes


def test_flat_image_folder_of_jpegs(tmp_path):
    write_folder(tmp_path, classes=("a", "b"), per_class=3, suffix=".jpg")
    (tmp_path / "README.txt").write_text("not an image")
    (tmp_path / "a" / "notes.txt").write_text("not an image either")
    ds = load_source(str(tmp_path))
    assert ds.classes == ["a", "b"] and ds.x.shape == (6, 8, 8, 3) and ds.x.dtype == np.uint8
    with pytest.raises(DataError, match="no test split"):
        load_source(str(tmp_path), split="test")


def test_images_of_another_size_are_resized_to_the_first_with_a_warning(tmp_path):
    write_folder(tmp_path, classes=("a",), per_class=2, size=8)
    Image.fromarray(images(1, 16)[0]).save(tmp_path / "a" / "999.png")
    with pytest.warns(UserWarning, match="resized 1 of 3 images"):
        ds = load_source(str(tmp_path))
    assert ds.x.shape == (3, 8, 8, 3)


def test_second_load_comes_from_the_cache(tmp_path, cache_dir, monkeypatch):
    write_folder(tmp_path)
    first = load_source(str(tmp_path))
    assert len(list(cache_dir.rglob("*.npy"))) == 1

    def no_decoding(paths):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(decode, "decode_images", no_decoding)
    second = load_source(str(tmp_path))
    np.testing.assert_array_equal(first.x, second.x)
    assert not second.x.flags.writeable  # a read-only map of the cache file


def test_corrupt_cache_is_rebuilt(tmp_path, cache_dir):
    expected = write_folder(tmp_path)
    load_source(str(tmp_path))
    (entry,) = cache_dir.rglob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a killed writer
    np.testing.assert_array_equal(load_source(str(tmp_path)).x, expected)
    np.testing.assert_array_equal(np.load(entry), expected)


def test_added_image_invalidates_the_cache_and_replaces_the_entry(tmp_path, cache_dir):
    write_folder(tmp_path)
    load_source(str(tmp_path))
    Image.fromarray(images(1)[0]).save(tmp_path / "cat" / "new.png")
    assert len(load_source(str(tmp_path))) == 13
    assert len(list(cache_dir.rglob("*.npy"))) == 1  # the stale entry is gone


@pytest.mark.parametrize("make", [
    lambda root: None,                                             # missing
    lambda root: root.mkdir(),                                     # empty
    lambda root: (root / "train" / "cat").mkdir(parents=True),     # class folders, no images
], ids=["missing", "empty", "no-images"])
def test_unreadable_folder_is_a_one_line_data_error(tmp_path, make):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError) as info:
        load_source(str(root))
    message = str(info.value)
    assert "\n" not in message and str(root) in message and "--data" in message
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_corrupt_image_is_named(tmp_path):
    write_folder(tmp_path, per_class=3)
    (tmp_path / "dog" / "001.png").write_bytes(b"this is no PNG")
    with pytest.raises(DataError, match=r"dog/001\.png"):
        load_source(str(tmp_path))


def test_cifar10_offline_is_a_data_error_pointing_at_a_local_copy(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/"
                        "cifar-10-python.tar.gz: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError, match="cifar10.*URL fetch failure.*--data") as info:
        load_source("cifar10")
    assert "\n" not in str(info.value)


def test_cifar10_source_uses_keras(monkeypatch):
    import keras

    train = (images(4, 32), np.array([[3], [1], [4], [1]], dtype=np.uint8))
    test = (images(2, 32, seed=9), np.array([[5], [9]], dtype=np.uint8))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: (train, test))
    ds = load_source("cifar10", split="test")
    np.testing.assert_array_equal(ds.x, test[0])
    assert ds.y.tolist() == [5, 9] and ds.y.dtype == np.int64 and ds.classes[9] == "truck"


def test_shared_cifar10_copy_loads_and_is_cached(shared_cifar, cache_dir):
    first = load_source(str(shared_cifar))  # decodes 50,000 JPEGs: about 6 s on 2 cores
    assert first.x.shape == (50000, 32, 32, 3) and first.x.dtype == np.uint8
    assert first.classes == data.CIFAR10_CLASSES
    assert np.bincount(first.y).tolist() == [5000] * 10
    assert len(list(cache_dir.rglob("*.npy"))) == 1
    second = load_source(str(shared_cifar))
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)


# -- subsets -------------------------------------------------------------------------------------

LABELS = np.repeat(np.arange(10), 50)


def test_subsets_are_stratified_and_disjoint():
    train, val = stratified_split(LABELS, 95, 33, seed=0)
    assert len(train) == 95 and len(val) == 33
    assert not set(train) & set(val)
    for idx in (train, val):
        counts = np.bincount(LABELS[idx], minlength=10)
        assert counts.max() - counts.min() <= 1


def test_subsets_are_reproducible_and_depend_on_the_seed():
    a, b, c = (stratified_split(LABELS, 100, 50, seed=s) for s in (1, 1, 2))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


def test_validation_subset_does_not_depend_on_the_training_size():
    small_train, val = stratified_split(LABELS, 50, 40, seed=3)
    large_train, same_val = stratified_split(LABELS, 200, 40, seed=3)
    np.testing.assert_array_equal(val, same_val)
    assert set(small_train) <= set(large_train)


def test_subset_larger_than_the_data_is_a_data_error():
    with pytest.raises(DataError, match="400 training.*200 validation.*500 images"):
        stratified_split(LABELS, 400, 200, seed=0)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=6),
       fraction=st.floats(0, 1), val_fraction=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
# one image of each of two classes, one to draw: a class that gives its only image is "exhausted"
# but holds one more than the other, which is still as even as possible
@example(sizes=[1, 1], fraction=0.0, val_fraction=0.5, seed=0)
def test_subsets_of_unbalanced_classes_are_exact_and_as_even_as_possible(
        sizes, fraction, val_fraction, seed):
    y = np.repeat(np.arange(len(sizes)), sizes)
    val_size = int(val_fraction * len(y))
    train_size = int(fraction * (len(y) - val_size))
    train, val = stratified_split(y, train_size, val_size, seed)
    assert len(train) == train_size and len(val) == val_size
    assert len(np.union1d(train, val)) == train_size + val_size
    counts = np.bincount(y[val], minlength=len(sizes))
    short = counts == np.array(sizes)  # classes that gave all they had
    if (~short).any():
        # the classes with images left differ by at most one; one that gave all it had holds at
        # most the even share, rounded up: never two more than a class with images left
        assert counts[~short].max() - counts[~short].min() <= 1
        assert counts[short].max(initial=0) <= counts[~short].min() + 1


def test_dataset_subset_keeps_classes():
    ds = Dataset(images(5), np.arange(5), ["a", "b", "c", "d", "e"])
    sub = ds.subset(np.array([4, 1]))
    assert sub.y.tolist() == [4, 1] and sub.classes == ds.classes
    np.testing.assert_array_equal(sub.x[0], ds.x[4])


# -- pipeline ------------------------------------------------------------------------------------

def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_evaluation_pipeline_normalizes_in_order_and_keeps_every_image():
    x = images(10)
    out = batches(make_dataset(x, np.arange(10), batch_size=4, training=False))
    assert [len(y) for _, y in out] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in out]), np.arange(10))
    expected = (x / 255.0 - data.CIFAR10_MEAN) / data.CIFAR10_STD
    np.testing.assert_allclose(np.concatenate([x for x, _ in out]), expected, atol=1e-5)
    assert out[0][0].dtype == np.float32


def test_training_pipeline_shuffles_by_seed_each_epoch_and_drops_the_partial_batch():
    x, y = images(20), np.arange(20)

    def orders(seed):
        ds = make_dataset(x, y, batch_size=8, training=True, seed=seed)
        return [np.concatenate([b for _, b in batches(ds)]) for _ in range(2)]

    first, second = orders(0)
    assert len(first) == 16 and not np.array_equal(first, second)  # reshuffled per epoch
    np.testing.assert_array_equal(np.stack(orders(0)), np.stack([first, second]))
    assert not np.array_equal(orders(1)[0], first)


def test_training_set_smaller_than_a_batch_is_a_data_error():
    with pytest.raises(DataError, match="fewer than one batch"):
        make_dataset(images(3), np.arange(3), batch_size=4, training=True)


def shifts_and_flips(image, pad=4):
    """Every pad-and-crop of ``image`` (black fill), flipped or not."""
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)])
    size = image.shape[0]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[dy:dy + size, dx:dx + size]
            yield crop
            yield crop[:, ::-1]


def test_augmentation_is_a_seeded_pad_crop_and_flip():
    x, y = images(16), np.arange(16)
    normalize = lambda a: (a / 255.0 - data.CIFAR10_MEAN) / data.CIFAR10_STD
    run = lambda: batches(make_dataset(x, y, 8, training=True, augment=True, seed=5))
    out = run()
    for images_, labels in out:
        for image, label in zip(images_, labels):
            assert any(np.allclose(image, normalize(c), atol=1e-5)
                       for c in shifts_and_flips(x[label]))
    assert not all(np.allclose(a, normalize(x[b])) for xs, ys in out for a, b in zip(xs, ys))
    np.testing.assert_array_equal(np.concatenate([a for a, _ in out]),
                                  np.concatenate([a for a, _ in run()]))


def test_cutout_zeroes_one_square_of_at_most_the_given_side():
    x = np.full((8, 16, 16, 3), 200, dtype=np.uint8)  # no pixel normalizes to 0 by itself
    (out, _), = batches(make_dataset(x, np.arange(8), 8, training=True, cutout=6, seed=0))
    for image in out:
        rows, cols = np.nonzero((image == 0).all(axis=-1))
        assert 0 < len(rows) <= 36
        assert rows.max() - rows.min() < 6 and cols.max() - cols.min() < 6
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def test_augmentation_on_an_evaluation_pipeline_is_refused():
    with pytest.raises(ValueError, match="training pipelines only"):
        make_dataset(images(4), np.arange(4), 2, training=False, augment=True)
