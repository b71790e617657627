"""The training and validation subsets a scorer works on, carved from a source's training split
and cached in-process: a worker scoring many candidates of one search loads and slices the source
once. Every scorer that reads images (the proxy, the one-shot supernet, zero-cost on real images)
takes its subsets here, with the same images for the same (source, sizes, seed)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Subsets:
    """The training and validation images of one (source, sizes, subset_seed)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[str] = field(default_factory=list)


# (data, cache_dir, train_size, val_size, subset_seed) -> Subsets; a worker evaluating many
# candidates of one search hits the same key every time. Two entries: a proxy and a longer run.
_SUBSETS: OrderedDict[tuple, Subsets] = OrderedDict()
_SUBSETS_MAX = 2


def load_subsets(data: str, train_size: int, val_size: int, subset_seed: int,
                 cache_dir: str | None = None, source=None) -> Subsets:
    """``train_size`` and ``val_size`` class-stratified images of the source ``data`` (cached
    when ``source``, an already loaded ``Dataset``, is None). A subset larger than the source
    raises ``DataError``."""
    from nasplay.data.sources import load_source, stratified_split

    key = (data, cache_dir, train_size, val_size, subset_seed)
    if source is None and key in _SUBSETS:
        _SUBSETS.move_to_end(key)
        return _SUBSETS[key]
    loaded = source if source is not None else load_source(data, cache_dir=cache_dir)
    train_idx, val_idx = stratified_split(loaded.y, train_size, val_size, subset_seed)
    result = Subsets(np.ascontiguousarray(loaded.x[train_idx]), loaded.y[train_idx],
                     np.ascontiguousarray(loaded.x[val_idx]), loaded.y[val_idx],
                     list(loaded.classes))
    if source is None:
        _SUBSETS[key] = result
        while len(_SUBSETS) > _SUBSETS_MAX:
            _SUBSETS.popitem(last=False)
    return result
