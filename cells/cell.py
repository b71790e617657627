"""A cell of a genotype as one Keras layer, called on ``[h_prev_prev, h_prev]``.

The wiring is NASNet's (Zoph et al. 2018), in the form DARTS's ``model.py`` made common:

1. Preprocessing brings both inputs to ``filters`` channels at one resolution: ``h_prev`` through
   ReLU-1x1 conv-BN, ``h_prev_prev`` through a factorized reduction when it is twice the size of
   ``h_prev`` (the previous cell was a reduction cell), else through ReLU-1x1 conv-BN too. A
   projection is applied even when the widths already match, so that the parameter count of a
   network depends on its genotype and sizes only (as in the papers); but an input that no block
   reads gets none: its weights could never affect the output, would get no gradient (Keras warns
   about every one of them) and would inflate the parameter and FLOP counts a search compares.
   (About 10-18% of the cells sampled from ``nasnet``/``amoebanet``/``darts`` leave an input
   unread; every published cell reads both.)
2. Hidden states ``[s0, s1, block 0, block 1, ...]``: block ``i`` applies ``ops[k]`` to hidden
   state ``inputs[k]`` for its two branches and adds the results (or concatenates them, which
   gives that hidden state ``2 * filters`` channels; ops infer their input width, so readers
   adapt). In a reduction cell, ops that read ``s0`` or ``s1`` have stride 2, so every block output
   is at the reduced size.
3. The output concatenates the loose ends, ``CellSpec.concat``: block outputs no block reads. The
   cell inputs ``s0``/``s1`` are never part of the output, even when no block reads them (the
   NASNet-A code concatenates an unread input too; DARTS's genotypes, and this project, do not).

Drop-path (NASNet's ScheduledDropPath, here with a constant rate) zeroes whole branches per
sample while training and rescales the survivors; identity branches are never dropped.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from cells.ops import CompositeLayer, FactorizedReduce, ReLUConvBN, check_filters, make_op
from search_space.genotype import CellSpec

_PACKAGE = "nasplay"


def check_rate(rate, name: str) -> float:
    """A probability in [0, 1): 1 would drop everything, always."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {rate!r}")
    return float(rate)


def _spatial(shape) -> tuple:
    return tuple(shape[1:3])


def _halved(size):
    return None if size is None else -(-size // 2)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DropPath(layers.Layer):
    """Drop the whole input of a sample with probability ``rate`` while training; scale by
    ``1 / (1 - rate)`` so the expected value is unchanged. A pass-through at inference."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "rate")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        mask = ops.floor(keep + noise)  # 1 with probability keep, else 0
        return x * mask / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Cell(CompositeLayer):
    """One NASNet-style cell: ``Cell(spec, filters)([h_prev_prev, h_prev])``.

    Args:
        cell: a ``search_space.CellSpec`` or its dict (``CellSpec.to_dict()``, or the bare list
            of block dicts found in a genotype's JSON). The config stores the dict, so a model
            holding cells serializes to plain JSON.
        filters: width of every branch; the output has ``filters`` channels per loose end
            (twice that for a loose end whose block concatenates).
        reduction: halve the resolution (ops reading the cell inputs get stride 2).
        drop_path_rate: probability of dropping a non-identity branch per sample while training.
        seed: seed of the drop-path noise (``None``: unseeded).
    """

    def __init__(self, cell, filters: int, reduction: bool = False, drop_path_rate: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.spec = cell if isinstance(cell, CellSpec) else CellSpec.from_dict(cell)
        self.filters = check_filters(filters)
        if self.filters < 2:
            raise ValueError(f"filters must be at least 2 (a factorized reduction splits them), "
                             f"got {filters}")
        if not isinstance(reduction, bool):
            raise ValueError(f"reduction must be True or False, got {reduction!r}")
        self.reduction = reduction
        self.drop_path_rate = check_rate(drop_path_rate, "drop_path_rate")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        self.seed = seed

        read = {index for block in self.spec.blocks for index in block.inputs}
        self._reads_prev_prev = 0 in read
        self.preprocess0 = None  # chosen in wire(), once the size of h_prev_prev is known
        self.preprocess1 = ReLUConvBN(self.filters, 1) if 1 in read else None
        self.branch_ops = []
        self.drop_paths = []
        for i, block in enumerate(self.spec.blocks):
            branch_ops, drops = [], []
            for k, (index, name) in enumerate(zip(block.inputs, block.ops)):
                strides = 2 if self.reduction and index < 2 else 1
                branch_ops.append(make_op(name, self.filters, strides))
                if self.drop_path_rate > 0.0 and name != "identity":
                    seed = None if self.seed is None else self.seed + 2 * i + k
                    drops.append(DropPath(self.drop_path_rate, seed))
                else:
                    drops.append(None)
            self.branch_ops.append(branch_ops)
            self.drop_paths.append(drops)

    def _check_input_shape(self, input_shape):
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 2
                and all(isinstance(s, (list, tuple)) and len(s) == 4 for s in input_shape)):
            raise ValueError(f"Cell must be called on [h_prev_prev, h_prev], two 4-D tensors "
                             f"(N, H, W, C); got input shape {input_shape!r}")
        return input_shape

    def _prev_prev_is_larger(self, input_shape) -> bool:
        """Whether h_prev_prev must be reduced to h_prev's size (twice as large), or not."""
        pp, p = (_spatial(s) for s in self._check_input_shape(input_shape))
        if pp == p or None in pp or None in p:
            return False
        if tuple(_halved(d) for d in pp) == p:
            return True
        raise ValueError(f"Cell inputs must have the same spatial size, or h_prev_prev twice "
                         f"h_prev's; got h_prev_prev {pp} and h_prev {p}")

    def wire(self, input_shape):
        larger = self._prev_prev_is_larger(input_shape)  # validates the shapes either way
        if not self._reads_prev_prev:
            self.preprocess0 = None
        elif larger:
            self.preprocess0 = FactorizedReduce(self.filters)
        else:
            self.preprocess0 = ReLUConvBN(self.filters, 1)

    def call(self, inputs, training=None):
        h_prev_prev, h_prev = inputs
        states = [None if self.preprocess0 is None  # unread input: nothing reads the state
                  else self.preprocess0(h_prev_prev, training=training),
                  None if self.preprocess1 is None
                  else self.preprocess1(h_prev, training=training)]
        for block, branch_ops, drops in zip(self.spec.blocks, self.branch_ops, self.drop_paths):
            outputs = []
            for index, op, drop in zip(block.inputs, branch_ops, drops):
                y = op(states[index], training=training)
                if drop is not None:
                    y = drop(y, training=training)
                outputs.append(y)
            if block.combine == "concat":
                states.append(ops.concatenate(outputs, axis=-1))
            else:
                states.append(outputs[0] + outputs[1])
        loose_ends = [states[i] for i in self.spec.concat]
        if len(loose_ends) == 1:
            return loose_ends[0]
        return ops.concatenate(loose_ends, axis=-1)

    @property
    def output_channels(self) -> int:
        """Channels of the output: ``filters`` per loose end, twice for concatenating blocks."""
        return sum(self.filters * (2 if self.spec.blocks[i - 2].combine == "concat" else 1)
                   for i in self.spec.concat)

    def compute_output_shape(self, input_shape):
        self._prev_prev_is_larger(input_shape)  # validates
        n, h, w, _ = input_shape[1]
        if self.reduction:
            h, w = _halved(h), _halved(w)
        return (n, h, w, self.output_channels)

    def get_config(self):
        return {**super().get_config(), "cell": self.spec.to_dict(), "filters": self.filters,
                "reduction": self.reduction, "drop_path_rate": self.drop_path_rate,
                "seed": self.seed}
