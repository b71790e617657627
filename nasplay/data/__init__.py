"""Images for training and scoring: sources and subsets (``sources``), decoding folders of image
files (``decode``) into a cache (``cache``), the ``tf.data`` pipeline (``pipeline``) and
``DataError``.

    from nasplay.data import load_source, stratified_split
"""

from nasplay.data.errors import DataError
from nasplay.data.pipeline import CIFAR10_MEAN, CIFAR10_STD
from nasplay.data.sources import Dataset, load_source, make_dataset, stratified_split

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "DataError", "Dataset", "load_source", "make_dataset",
           "stratified_split"]
