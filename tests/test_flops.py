"""nasplay.scorers.proxy.flops against multiply-adds counted by hand."""

import keras
import pytest
from keras import layers

from cells.ops import make_op
from nasplay.scorers.proxy.flops import count_flops, flops_by_layer


def _chain(input_shape, *stack):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in stack:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("layer, input_shape, expected", [
    # 8x8 output x 4 filters x 3x3 taps x 3 input channels
    (layers.Conv2D(4, 3, padding="same"), (8, 8, 3), 8 * 8 * 4 * 9 * 3),
    # stride 2: 4x4 output; groups 2: each filter sees 4 of the 8 input channels
    (layers.Conv2D(6, 3, strides=2, padding="same", groups=2), (8, 8, 8), 4 * 4 * 6 * 9 * 4),
    # dilation reads other pixels, not more of them; 'valid' shrinks 8 -> 8 - 2*2 = 4
    (layers.Conv2D(2, 3, dilation_rate=2), (8, 8, 3), 4 * 4 * 2 * 9 * 3),
    (layers.Conv2D(5, (1, 7), padding="same"), (6, 6, 2), 6 * 6 * 5 * 7 * 2),
    (layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), (8, 8, 3), 8 * 8 * 6 * 9),
    (layers.DepthwiseConv2D(5, strides=2, padding="same"), (8, 8, 4), 4 * 4 * 4 * 25),
    # depthwise 3x3 at the strided output size, then a 1x1 from 3 to 7 channels
    (layers.SeparableConv2D(7, 3, strides=2, padding="same"), (8, 8, 3), 4 * 4 * (3 * 9 + 3 * 7)),
    (layers.Dense(10), (32,), 32 * 10),
    (layers.Dense(3), (5, 4), 5 * 4 * 3),  # applied at each of 5 positions
    (layers.Conv2DTranspose(4, 3, strides=2, padding="same"), (4, 4, 2), 4 * 4 * 2 * 9 * 4),
])
def test_single_layer_matches_hand_count(layer, input_shape, expected):
    assert count_flops(_chain(input_shape, layer)) == expected


def test_batch_norm_pooling_and_activations_are_not_counted():
    model = _chain((8, 8, 3), layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D(),
                   layers.GlobalAveragePooling2D())
    assert count_flops(model) == 0


def test_nested_composite_op_counts_its_sublayers():
    # sep_conv_3x3 at stride 2 from 4 to 8 channels on 8x8: two (ReLU, depthwise, 1x1, BN) stages
    model = _chain((8, 8, 4), make_op("sep_conv_3x3", 8, 2))
    first = 4 * 4 * 4 * 9 + 4 * 4 * 4 * 8      # depthwise at the output size, then 1x1 4 -> 8
    second = 4 * 4 * 8 * 9 + 4 * 4 * 8 * 8     # stride 1, 8 -> 8
    assert count_flops(model) == first + second
    assert len(flops_by_layer(model)) == 4


def test_factorized_reduce_counts_both_halves():
    # identity at stride 2 is a factorized reduction: two stride-2 1x1 convs, 3 -> 4 channels each
    model = _chain((8, 8, 3), make_op("identity", 8, 2))
    assert count_flops(model) == 2 * (4 * 4 * 4 * 3)


def test_shared_layer_called_twice_counts_twice():
    dense = layers.Dense(4)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, dense(layers.Dense(3)(dense(layers.Dense(3)(inputs)))))
    assert count_flops(model) == 3 * 3 + 3 * 4 + 4 * 3 + 3 * 4


def test_model_is_left_unpatched_and_unchanged():
    model = _chain((8, 8, 3), layers.Conv2D(4, 3), layers.GlobalAveragePooling2D())
    before = [w.copy() for w in model.get_weights()]
    count_flops(model)
    conv = model.layers[1]
    assert "call" not in vars(conv)
    assert all((a == b).all() for a, b in zip(before, model.get_weights()))


def test_input_shape_is_required_for_models_without_inputs():
    model = keras.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(model)
    assert count_flops(model, input_shape=(5,)) == 10


def test_an_untested_keras_gets_no_figure_rather_than_a_wrong_one(monkeypatch):
    # the counter hooks private Keras parts (nasplay.runtime._internals.layer_calls): only on the
    # Keras versions the suite covers
    import nasplay.runtime._internals as internals

    model = _chain((8, 8, 3), layers.Conv2D(4, 3))
    assert internals.tested_keras() and count_flops(model) > 0
    monkeypatch.setattr(internals, "TESTED_KERAS", ((2, 0),))
    assert count_flops(model) is None and flops_by_layer(model) is None
    assert "call" not in vars(model.layers[1])


def test_an_untested_keras_trains_with_stock_sgd(monkeypatch):
    import nasplay.runtime._internals as internals
    from nasplay.runtime._internals.fused_sgd import fused_sgd_class, sgd_class

    assert sgd_class("tensorflow") is fused_sgd_class()
    assert sgd_class("jax") is keras.optimizers.SGD
    monkeypatch.setattr(internals, "TESTED_KERAS", ((2, 0),))
    assert sgd_class("tensorflow") is keras.optimizers.SGD


def test_nb201_network_matches_hand_count():
    """NAS-Bench-201's network for six nor_conv_3x3 at C = 4, N = 1 on 8x8 images: every edge a
    3x3 conv, the reductions' two 3x3 convs and 1x1 shortcut, the stem and the classifier."""
    from cells import build_network
    from search_space import EdgeGenotype

    conv = EdgeGenotype(nodes=(("nor_conv_3x3",),) + (("nor_conv_3x3",) * 2,)
                        + (("nor_conv_3x3",) * 3,))
    model = build_network(conv, filters=4, cells_per_stage=1, input_shape=(8, 8, 3))
    stem = 8 * 8 * 4 * 9 * 3
    cells = sum(6 * size * size * c * 9 * c for size, c in ((8, 4), (4, 8), (2, 16)))
    reductions = sum(size * size * c * 9 * (c // 2) + size * size * c * 9 * c
                     + size * size * c * (c // 2) for size, c in ((4, 8), (2, 16)))
    assert count_flops(model) == stem + cells + reductions + 16 * 10
    none = EdgeGenotype(nodes=(("none",), ("none",) * 2, ("none",) * 3))
    assert count_flops(build_network(none, filters=4, cells_per_stage=1,
                                     input_shape=(8, 8, 3))) == stem + reductions + 16 * 10
