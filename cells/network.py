"""The CIFAR network of the NASNet, AmoebaNet and DARTS papers, built from a genotype (and, for an
edge genotype, NAS-Bench-201's: ``cells.nb201``).

Layout: stem (3x3 conv to ``stem_multiplier * filters`` + BN), N normal cells, a reduction cell
(filters x2), N normal cells, a reduction cell (x2), N normal cells, ReLU, global average pooling,
optional dropout, a dense classifier. Every cell reads the outputs of the two cells before it; the
first reads the stem twice. So ``N = 6, filters = 36`` is DARTS's "20 cells, C = 36" network.
"""

from __future__ import annotations

import keras
from keras import layers

from cells.cell import Cell, check_rate
from cells.nb201 import NB201_CELLS_PER_STAGE, build_nb201_network
from cells.ops import batch_norm, check_filters, check_int, softmax_classifier
from search_space.edge_genotype import EdgeGenotype
from search_space.genotype import Genotype

CELLS_PER_STAGE = 2
"""``build_network``'s N for a two-cell genotype (an edge genotype's: NAS-Bench-201's 5)."""
STEM_MULTIPLIER = 3
"""``build_network``'s stem width, in ``filters``, for a two-cell genotype (NAS-Bench-201's: 1)."""

# The CIFAR auxiliary head of NASNet and DARTS (``AuxiliaryHeadCIFAR``): from 8x8 maps, a 5x5
# average pool with stride 3 leaves 2x2, a 1x1 conv to 128, a 2x2 conv to 768, a classifier.
# Smaller maps skip the pool; global pooling after the 2x2 conv keeps any size working.
AUX_POOL, AUX_POOL_STRIDES = 5, 3
AUX_HIDDEN, AUX_FEATURES, AUX_KERNEL = 128, 768, 2


def cell_layout(filters: int, cells_per_stage: int) -> list[tuple[int, bool, int]]:
    """``(stage, reduction, width)`` of every cell in order: N normal cells, then per later stage
    a reduction cell doubling the width and N normal cells (the supernet has the same layout)."""
    layout, width = [], filters
    for stage in range(3):
        if stage > 0:
            width *= 2
            layout.append((stage, True, width))
        layout += [(stage, False, width)] * cells_per_stage
    return layout


def cell_name(index: int, reduction: bool) -> str:
    """The layer name of cell ``index`` (``normal_cell_0``, ``reduction_cell_2``, ...)."""
    return f"{'reduction' if reduction else 'normal'}_cell_{index}"


def default_cells_per_stage(genotype) -> int:
    """``build_network``'s N for ``genotype`` (or its dict): 5 for an edge genotype
    (NAS-Bench-201's network), 2 for a two-cell one."""
    if isinstance(genotype, EdgeGenotype) or (isinstance(genotype, dict) and "nodes" in genotype):
        return NB201_CELLS_PER_STAGE
    return CELLS_PER_STAGE


def _edge_network(genotype: EdgeGenotype, stem_multiplier, drop_path_rate, auxiliary_head,
                  **kwargs) -> keras.Model:
    """NAS-Bench-201's network; the two-cell networks' options it has no place for are refused
    rather than ignored, so a setting never silently changes nothing."""
    if auxiliary_head:
        raise ValueError("auxiliary_head: NAS-Bench-201's network (an edge genotype) has no "
                         "auxiliary head; pass auxiliary_head=False")
    if check_rate(drop_path_rate, "drop_path_rate") > 0.0:
        raise ValueError(f"drop_path_rate: NAS-Bench-201's network (an edge genotype) has no "
                         f"drop path; got {drop_path_rate!r}, pass 0")
    if stem_multiplier not in (None, 1) or isinstance(stem_multiplier, bool):
        raise ValueError(f"stem_multiplier: NAS-Bench-201's stem (an edge genotype) has "
                         f"`filters` channels, multiplier 1; got {stem_multiplier!r}")
    return build_nb201_network(genotype, **kwargs)


def _auxiliary_head(x, num_classes: int):
    """DARTS's AuxiliaryHeadCIFAR, sized to whatever map it gets (8x8 at CIFAR resolution)."""
    x = layers.ReLU(name="aux_relu")(x)
    h, w = x.shape[1], x.shape[2]
    if h is not None and w is not None and min(h, w) >= AUX_POOL:
        x = layers.AveragePooling2D(AUX_POOL, strides=AUX_POOL_STRIDES, name="aux_pool")(x)
    x = layers.Conv2D(AUX_HIDDEN, 1, use_bias=False, name="aux_conv_1x1")(x)
    x = layers.ReLU(name="aux_relu_1")(batch_norm(name="aux_bn_1")(x))
    # 2x2 as in the papers (it covers the whole 2x2 map at CIFAR size); smaller maps get less
    h, w = x.shape[1], x.shape[2]
    kernel = (min(h or AUX_KERNEL, AUX_KERNEL), min(w or AUX_KERNEL, AUX_KERNEL))
    x = layers.Conv2D(AUX_FEATURES, kernel, use_bias=False, name="aux_conv_2x2")(x)
    x = layers.ReLU(name="aux_relu_2")(batch_norm(name="aux_bn_2")(x))
    x = layers.GlobalAveragePooling2D(name="aux_pool_global")(x)
    return softmax_classifier(x, num_classes, "aux_predictions")


def build_network(genotype, num_classes: int = 10, filters: int = 16,
                  cells_per_stage: int | None = None, stem_multiplier: int | None = None,
                  input_shape=(32, 32, 3), drop_path_rate: float = 0.0,
                  auxiliary_head: bool = False, name: str | None = None, *,
                  dropout_rate: float = 0.0, seed: int | None = None) -> keras.Model:
    """A functional ``keras.Model`` from a genotype (a ``Genotype``, an ``EdgeGenotype`` or
    either's dict).

    Outputs class probabilities (float32); with ``auxiliary_head=True`` the model has two outputs,
    ``[predictions, aux_predictions]``, the second taken after the second reduction cell (DARTS
    weights its loss 0.4). ``cells_per_stage`` may be 0 (stem, two reduction cells, classifier);
    None: 2. ``stem_multiplier`` None: 3. ``seed`` seeds drop-path noise, cell ``k`` gets
    ``seed + 100 * k``, and the dropout.

    An edge genotype (``nb201``) builds NAS-Bench-201's network (``cells.nb201``), where
    ``cells_per_stage`` None means its N = 5; it has no auxiliary head, drop path or stem
    multiplier, so ``auxiliary_head=True``, a ``drop_path_rate`` above 0 or a
    ``stem_multiplier`` other than None or 1 is a ValueError.
    """
    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)  # an edge genotype's dict too ("nodes")
    if cells_per_stage is None:
        cells_per_stage = default_cells_per_stage(genotype)
    if isinstance(genotype, EdgeGenotype):
        return _edge_network(genotype, stem_multiplier, drop_path_rate, auxiliary_head,
                             num_classes=num_classes, filters=filters,
                             cells_per_stage=cells_per_stage, input_shape=input_shape, name=name,
                             dropout_rate=dropout_rate, seed=seed)
    if not isinstance(genotype, Genotype):
        raise ValueError(f"genotype must be a search_space.Genotype, an EdgeGenotype or its "
                         f"dict, got {type(genotype).__name__}")
    return _two_cell_network(genotype, num_classes, filters, cells_per_stage,
                             STEM_MULTIPLIER if stem_multiplier is None else stem_multiplier,
                             input_shape, drop_path_rate, auxiliary_head, name,
                             dropout_rate=dropout_rate, seed=seed)


def _two_cell_network(genotype: Genotype, num_classes, filters, cells_per_stage, stem_multiplier,
                      input_shape, drop_path_rate, auxiliary_head, name, *, dropout_rate,
                      seed) -> keras.Model:
    """``build_network`` for a two-cell genotype: NASNet's layout (the module docstring)."""
    check_int("num_classes", num_classes, 2)
    check_int("filters", filters, 2)
    check_int("cells_per_stage", cells_per_stage, 0)
    check_int("stem_multiplier", stem_multiplier, 1)
    check_rate(drop_path_rate, "drop_path_rate")
    check_rate(dropout_rate, "dropout_rate")
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3):
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(stem_multiplier * filters, 3, padding="same", use_bias=False,
                      name="stem_conv")(inputs)
    stem = batch_norm(name="stem_bn")(x)

    h_prev_prev, h_prev = stem, stem
    aux = None
    for index, (stage, reduction, width) in enumerate(cell_layout(filters, cells_per_stage)):
        cell = Cell(genotype.reduction if reduction else genotype.normal, width,
                    reduction=reduction, drop_path_rate=drop_path_rate,
                    seed=None if seed is None else seed + 100 * index,
                    name=cell_name(index, reduction))
        h_prev_prev, h_prev = h_prev, cell([h_prev_prev, h_prev])
        if auxiliary_head and reduction and stage == 2:
            aux = _auxiliary_head(h_prev, num_classes)

    x = layers.ReLU(name="head_relu")(h_prev)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout_rate > 0.0:
        x = layers.Dropout(dropout_rate, seed=seed, name="dropout")(x)
    outputs = softmax_classifier(x, num_classes, "predictions")
    return keras.Model(inputs, [outputs, aux] if aux is not None else outputs,
                       name=name or f"{genotype.space}_network")
