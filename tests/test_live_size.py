"""Live parameters (``nasplay.scorers.live_size``): the edges whose ops cannot learn from the
image are found, and they are exactly the kernels that get no gradient."""

import numpy as np
import pytest

from nasplay.scorers.live_size import live_genotype, live_params
from search_space import get_space, parse_arch_str

# node 1 is all zeros: the convolutions reading it (1->2, 1->3) never see the image
DISGUISED = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
LIVE_OF_DISGUISED = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
ALL_LIVE = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def arch(genotype) -> str:
    return get_space("nb201").to_arch_str(genotype)


def test_ops_reading_a_node_without_the_image_are_dead():
    assert arch(live_genotype(parse_arch_str(DISGUISED))) == LIVE_OF_DISGUISED


def test_ops_the_output_does_not_read_are_dead():
    # node 2 feeds nothing (2->3 is none): the conv into it is dead, the rest lives
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    expected = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    assert arch(live_genotype(parse_arch_str(cell))) == expected


def test_a_cell_without_dead_edges_keeps_the_built_count_without_building():
    genotype = parse_arch_str(ALL_LIVE)
    assert live_genotype(genotype) == genotype
    assert live_params(genotype, 12345, filters=4, cells_per_stage=1) == 12345


def test_a_genotype_of_a_space_without_a_zero_op_is_its_own_live_form():
    from search_space import PUBLISHED

    genotype = PUBLISHED["nasnet-a"]
    assert live_genotype(genotype) is genotype
    assert live_params(genotype, 777, filters=4, cells_per_stage=1) == 777


def test_live_params_count_the_live_cells_network():
    from cells import build_network

    genotype = parse_arch_str(DISGUISED)
    full = build_network(genotype, filters=4, cells_per_stage=1).count_params()
    live = build_network(parse_arch_str(LIVE_OF_DISGUISED), filters=4,
                         cells_per_stage=1).count_params()
    assert live_params(genotype, full, filters=4, cells_per_stage=1) == live < full


def test_the_dead_kernels_are_exactly_those_without_gradient():
    """Two dead convolutions a cell, 3 cells (N=1): 6 kernels get an all-zero gradient."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is taken with TensorFlow's tape")
    import tensorflow as tf

    from cells import build_network

    keras.utils.set_random_seed(0)
    network = build_network(parse_arch_str(DISGUISED), filters=4, cells_per_stage=1)
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    kernels = [w for w in network.trainable_weights if len(w.shape) == 4]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(network(images, training=True)[:, 0])   # one class's probability
    grads = tape.gradient(loss, [w.value for w in kernels])
    zero = [g is None or not np.any(g.numpy()) for g in grads]
    assert sum(zero) == 6
    assert sum(not z for z in zero) > 0
