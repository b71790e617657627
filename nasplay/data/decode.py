"""Decoding a folder of image files into one uint8 array, with or without TensorFlow.

Two decoders give the same pixels for JPEG and PNG files: TensorFlow's (``tf.data`` decodes on
all cores without the GIL, about twice PIL's speed on two cores) and Pillow's (threads; no
TensorFlow needed). JPEGs are decoded with libjpeg's accurate integer DCT in both
(``dct_method="INTEGER_ACCURATE"`` is Pillow's own method): TensorFlow's default, the fast DCT,
differed from Pillow by up to 5 grey levels on every image tried, while the accurate one matched
Pillow exactly on 1,000 CIFAR-10 JPEGs. So a decoded cache entry is the same whichever backend
filled it, and the same seed trains on the same pixels everywhere.

TensorFlow's decoder is used when TensorFlow is the Keras backend (it is loaded anyway); under
JAX or PyTorch Pillow is, so that a JAX process never starts TensorFlow's runtime, which would
claim the GPU's memory. Images of another size than the first are resized to it (bilinear, with
antialiasing); the two decoders' resizing may differ by rounding, and a warning says how many.
"""

from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nasplay.data.errors import DataError
from nasplay.errors import first_line, plural

_DECODE_BATCH = 1024  # images per decoded batch: the granularity of locating a corrupt file


def decode_images(paths: list[str]) -> np.ndarray:
    """Decode ``paths`` into one uint8 array (N, H, W, 3), sized like the first image."""
    if _use_tensorflow():
        x, resized = _decode_tf(paths)
    else:
        x, resized = _decode_pil(paths)
    if resized:
        warnings.warn(f"resized {resized} of {plural(len(paths), 'image')} under "
                      f"{os.path.dirname(os.path.dirname(paths[0]))} to {x.shape[1]}x"
                      f"{x.shape[2]}, the size of the first image", stacklevel=5)
    return x


def _use_tensorflow() -> bool:
    from nasplay.runtime.backends import active_backend

    if "tensorflow" in sys.modules:
        return True
    if active_backend() != "tensorflow":
        return False
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _error(path: str, why: str) -> DataError:
    return DataError(f"cannot decode image {path} ({why}); remove or replace it")


# ---------------------------------------------------------------------------------- Pillow


def _decode_one_pil(path: str, size=None) -> tuple[np.ndarray, bool]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            resized = size is not None and image.size != (size[1], size[0])
            if resized:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8), resized
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise _error(path, first_line(e)) from e


def _decode_pil(paths: list[str]) -> tuple[np.ndarray, int]:
    first, _ = _decode_one_pil(paths[0])
    size = first.shape[:2]
    x = np.empty((len(paths), *size, 3), dtype=np.uint8)
    resized = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # Pillow frees the GIL
        for i, (image, was_resized) in enumerate(
                pool.map(lambda p: _decode_one_pil(p, size), paths, chunksize=64)):
            x[i] = image
            resized += was_resized
    return x, resized


# ------------------------------------------------------------------------------ TensorFlow


def _decode_tf_tensor(tf, contents):
    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))


def _decode_one_tf(path: str) -> np.ndarray:
    import tensorflow as tf

    try:
        return _decode_tf_tensor(tf, tf.io.read_file(path)).numpy()
    except tf.errors.OpError as e:
        raise _error(path, first_line(e.message)) from e


def _decode_tf(paths: list[str]) -> tuple[np.ndarray, int]:
    """tf.data decoding in parallel. Its errors do not name the file, so a failing batch is
    decoded again one file at a time to name it."""
    import tensorflow as tf

    size = _decode_one_tf(paths[0]).shape[:2]

    def decode(path):
        image = _decode_tf_tensor(tf, tf.io.read_file(path))
        resize = tf.reduce_any(tf.shape(image)[:2] != size)
        image = tf.cond(
            resize,
            lambda: tf.saturate_cast(tf.round(tf.image.resize(image, size, antialias=True)),
                                     tf.uint8),
            lambda: image)
        return tf.ensure_shape(image, (*size, 3)), resize

    batches = iter(tf.data.Dataset.from_tensor_slices(paths)
                   .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
                   .batch(_DECODE_BATCH)
                   .prefetch(1))
    x = np.empty((len(paths), *size, 3), dtype=np.uint8)
    resized = 0
    for start in range(0, len(paths), _DECODE_BATCH):
        try:
            images, flags = next(batches)
        except tf.errors.OpError as e:
            for path in paths[start:start + _DECODE_BATCH]:
                _decode_one_tf(path)  # raises DataError naming the file
            raise _error(f"{paths[start]}..", first_line(e.message)) from e
        x[start:start + len(images)] = images.numpy()
        resized += int(np.count_nonzero(flags.numpy()))
    return x, resized
