"""nasplay.data.pipeline and nasplay.data.decode: the numpy and tf.data pipelines give the same
batches for a seed, and the Pillow and TensorFlow decoders the same pixels, so every backend trains
on the same data."""

import numpy as np
import pytest
from PIL import Image

from nasplay.data import decode
from nasplay.data.pipeline import BatchPlan, eval_batches, normalize, numpy_batches, tf_batches


def images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def tf_list(ds):
    import tensorflow as tf

    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in ds]


def numpy_list(ds):
    return [ds[i] for i in range(ds.num_batches)]


@pytest.mark.parametrize("augment, cutout, two_outputs", [(False, 0, False), (True, 0, False),
                                                          (True, 6, True), (False, 4, False)])
def test_numpy_and_tf_pipelines_give_identical_batches(augment, cutout, two_outputs):
    x, y = images(40, size=16), np.arange(40) % 10
    plan = BatchPlan(len(x), 8, epochs=2, augment=augment, cutout=cutout, seed=3)
    from_tf = tf_list(tf_batches(x, y, plan, two_outputs=two_outputs))
    from_numpy = numpy_list(numpy_batches(x, y, plan, two_outputs=two_outputs))
    assert len(from_tf) == len(from_numpy) == 2 * 5  # 40 // 8 batches, two epochs
    for (tf_x, tf_y), (np_x, np_y) in zip(from_tf, from_numpy):
        assert tf_x.dtype == np_x.dtype == np.float32
        np.testing.assert_array_equal(tf_x, np_x)
        np.testing.assert_array_equal(np.asarray(tf_y), np.asarray(np_y))
    if two_outputs:
        assert isinstance(from_numpy[0][1], tuple) and len(from_numpy[0][1]) == 2


def test_plan_orders_depend_on_seed_and_epoch_only():
    plan = BatchPlan(50, 8, epochs=3, seed=1)
    first, again = list(plan.stream()), list(BatchPlan(50, 8, epochs=3, seed=1).stream())
    for (a, _), (b, _) in zip(first, again):
        np.testing.assert_array_equal(a, b)
    steps = plan.steps_per_epoch
    assert steps == 6 and len(first) == 3 * steps  # the partial batch of each epoch dropped
    epoch0 = np.concatenate([idx for idx, _ in first[:steps]])
    epoch1 = np.concatenate([idx for idx, _ in first[steps:2 * steps]])
    assert len(set(epoch0)) == 48 and not np.array_equal(epoch0, epoch1)  # reshuffled
    other = np.concatenate([idx for idx, _ in list(BatchPlan(50, 8, 1, seed=2).stream())])
    assert not np.array_equal(epoch0, other)


def test_augmentation_does_not_change_the_order():
    plain = [idx for idx, _ in BatchPlan(30, 5, 2, seed=4).stream()]
    augmented = [idx for idx, _ in BatchPlan(30, 5, 2, augment=True, cutout=3, seed=4).stream()]
    np.testing.assert_array_equal(np.stack(plain), np.stack(augmented))


def test_numpy_crop_and_flip_is_a_shifted_window_of_the_padded_image():
    x, y = images(16), np.arange(16)
    plan = BatchPlan(16, 16, 1, augment=True, seed=0)
    (batch, labels), = numpy_list(numpy_batches(x, y, plan))
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)])
    for image, label in zip(batch, labels):
        windows = [padded[label, r:r + 8, c:c + 8] for r in range(9) for c in range(9)]
        assert any(np.array_equal(image, normalize(w)) or np.array_equal(image, normalize(w[:, ::-1]))
                   for w in windows)


def test_eval_batches_keep_order_and_every_image():
    x = images(10)
    out = list(eval_batches(x, np.arange(10), 4))
    assert [len(labels) for _, labels in out] == [4, 4, 2]
    np.testing.assert_allclose(np.concatenate([b for b, _ in out]),
                               (x / 255.0 - (0.4914, 0.4822, 0.4465)) / (0.2470, 0.2435, 0.2616),
                               atol=1e-5)


def test_fewer_images_than_a_batch_is_a_one_line_user_error():
    from nasplay.errors import UserError

    with pytest.raises(UserError, match="fewer than one batch"):
        BatchPlan(3, 4)


def test_pillow_and_tensorflow_decode_jpegs_and_pngs_to_the_same_pixels(tmp_path):
    paths = []
    for i, image in enumerate(images(6, size=32, seed=7)):
        for suffix in (".jpg", ".png"):
            path = tmp_path / f"{i}{suffix}"
            Image.fromarray(image).save(path, quality=75) if suffix == ".jpg" \
                else Image.fromarray(image).save(path)
            paths.append(str(path))
    from_tf, _ = decode._decode_tf(paths)
    from_pil, _ = decode._decode_pil(paths)
    np.testing.assert_array_equal(from_tf, from_pil)


def test_shared_cifar_jpegs_decode_alike(shared_cifar):
    paths = sorted(str(p) for p in (shared_cifar / "train" / "cat").glob("*.jpg"))[:200]
    np.testing.assert_array_equal(decode._decode_tf(paths)[0], decode._decode_pil(paths)[0])


def test_pillow_names_a_corrupt_file(tmp_path):
    from nasplay.data import DataError

    good = tmp_path / "a.png"
    Image.fromarray(images(1)[0]).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"no image")
    with pytest.raises(DataError, match=r"b\.png"):
        decode._decode_pil([str(good), str(bad)])
