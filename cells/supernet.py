"""A weight-sharing supernet: every candidate of a search space in one Keras model (ENAS, SPOS).

Training one network per candidate costs about a minute on a laptop; a supernet is trained once
and then scores any candidate in seconds with the weights it inherits. ``SuperNet(space, ...)``
has the macro-structure of :func:`cells.build_network` (stem, stages of normal cells, two
reduction cells, global pooling, classifier) and, at every cell position, every op of every
branch of every block. Its forward pass takes the architecture as an integer tensor,
``space.encode(genotype)``, next to the images: ``supernet([images, arch])``. The choices are
``keras.ops.switch`` calls (``tf.switch_case`` under TensorFlow), which run only the chosen
branch, so one traced graph serves every candidate and an unchosen op costs nothing.

A supernet cell mirrors ``cells.Cell`` exactly, so that a path's weights are a standalone
network's weights (:meth:`SuperNet.extract`):

- preprocessing: ``h_prev`` through ReLU-1x1 conv-BN, ``h_prev_prev`` through a factorized
  reduction when it is twice as large, else ReLU-1x1 conv-BN; an input no block reads is not
  projected (its preprocessing is switched off, and it is never selected);
- block ``i``, branch ``k`` owns one op per candidate op, applied to the hidden state its input
  decision selects, whatever that input (ENAS's weights per (op, input) trained no better here
  and made the trace ~7x longer: BENCHMARKS.md, "Does the supernet learn?"). In a reduction
  cell an op reading a cell input has stride 2 and one reading a block output stride 1: those
  are different layers (an identity at stride 2 is a factorized reduction with weights), so
  reduction cells hold both sets;
- the output is the concatenation of *all* block outputs with the non-loose ones (read by a later
  block) zeroed, ``num_blocks * filters`` channels. The next cell's 1x1 preprocessing (and the
  classifier) sees zeros where the standalone cell has no channel, so it computes exactly what the
  standalone preprocessing computes with the rows of its kernel for the loose ends: ENAS's
  masking of the following 1x1 weights. :meth:`extract` slices those rows.
- drop-path (constant rate) on every branch whose op is not ``identity``;
- the candidate ops' batch norms are affine-free by default (``affine_ops=False``, as in DARTS's
  search network): their scales and shifts are half of the supernet's trainable variables
  (1,096 of 2,229 for ``amoebanet`` at F=8, N=1), and each variable costs a step some work
  (a gradient, a conditional update): without them a step is 6-9% cheaper and its
  first trace a third shorter (BENCHMARKS.md, "A supernet step"). :meth:`extract` gives the
  standalone batch norms scale 1 and shift 0, which is the same function. The preprocessing,
  stem and head norms keep theirs.

One layer has no standalone counterpart: an affine-free batch norm between the global pooling
and the classifier (``head_bn``). The scale of a cell's output depends on its wiring (a chain of
identities and pools doubles it per block, up to ``2 ** num_blocks``), and a classifier shared
by every path sees that scale change from step to step: without the head norm the training loss
spikes (gradient norms past 100 on a 3-op space) and the supernet collapses to predicting the
class prior (benchmarks/supernet_training_check.py). With moving statistics recalibrated for a
path, the norm is a fixed affine map, so :meth:`extract` folds it into the classifier's kernel
and bias and the standalone network stays ``build_network``'s.

The head norm fixes each channel's scale, not how many channels a path feeds the classifier: a
cell with five loose ends gives it five blocks' features, one with a single loose end one, and a
classifier shared by all paths sums them, so its logits grow with the count. ``loose_mean=True``
divides the classifier's input by the last cell's count of loose ends (a per-path constant that
:meth:`extract` also folds into the kernel): the logits become the mean of the loose blocks'
votes. In a 300-step check with random wiring it kept the training loss under chance where the
plain head stayed above it (BENCHMARKS.md, "Does the supernet learn?").

Only blocks that add (``nasnet``'s concatenations change widths); edge spaces: cells.supernet_nb201.

Training needs one more thing from the model, :meth:`SuperNet.update_groups`: which variables the
current path uses. TensorFlow gives the variables of unchosen branches zero gradients, not None,
so SGD's momentum and weight decay would keep moving them; the trainer skips them instead. (On
PyTorch, which runs eagerly, an unchosen branch is never called: it costs nothing and its
variables get no gradient at all.)
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import layers, ops

from cells.cell import DropPath, _halved, _spatial, check_rate
from cells.network import cell_layout, cell_name
from cells.ops import (FactorizedReduce, ReLUConvBN, affine_free_norms, batch_norm, check_filters,
                       check_int, make_op)
from cells.supernet_paths import _batch_norms

DECISIONS_PER_BLOCK = 4  # input_a, input_b, op_a, op_b: spaces whose only combine is "add"


def check_space(space, edges: bool = True):
    """``space`` (or by name) if a supernet holds it: blocks that add, or with ``edges`` an
    edge space (``cells.supernet_nb201``); else a one-line ValueError."""
    from search_space import SPACES, EdgeSpace, get_space

    def holds(s):
        return (edges and isinstance(s, EdgeSpace)) or tuple(getattr(s, "combines", ())) == ("add",)

    space = get_space(space) if isinstance(space, str) else space
    if holds(space):
        return space
    why = "ops are on edges (cells.supernet_nb201)" if isinstance(space, EdgeSpace) else \
        f"combines {', '.join(space.combines)} change the width of hidden states"
    raise ValueError(f"space {space.name!r}: its {why}, so a supernet cannot hold it (supported: "
                     f"{', '.join(sorted(n for n, s in SPACES.items() if holds(s)))})")


def _select(index, states):
    """The state ``index`` points at (a switch of pass-throughs: nothing is copied)."""
    if len(states) == 1:
        return states[0]
    return ops.switch(ops.clip(index, 0, len(states) - 1),
                      [lambda s=s: s for s in states])


def _flag(condition):
    return ops.cast(condition, "int32")


class SuperCell(layers.Layer):
    """Every candidate cell at one position of the network; called as
    ``cell([h_prev_prev, h_prev], arch)`` with ``arch`` this cell's ``4 * num_blocks`` decisions.

    Output: ``num_blocks * filters`` channels, the block outputs no block reads (the loose ends)
    in order, the others zeroed. ``op_names`` are the space's ops in its order (the op decision
    indexes them).
    """

    def __init__(self, op_names, num_blocks: int, filters: int, reduction: bool = False,
                 drop_path_rate: float = 0.0, seed: int | None = None, affine_ops: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.op_names = tuple(op_names)
        self.num_blocks = check_int("num_blocks", num_blocks, 1)
        self.filters = check_filters(filters)
        self.reduction = bool(reduction)
        self.drop_path_rate = check_rate(drop_path_rate, "drop_path_rate")
        self.identity = self.op_names.index("identity") if "identity" in self.op_names else None
        self.preprocess0 = None  # chosen in build(), once the size of h_prev_prev is known
        self.preprocess1 = ReLUConvBN(self.filters, 1)
        # branch_ops[i][k][j]: op j of branch k of block i at stride 1 (reads a block output in
        # a reduction cell, any state in a normal cell); reduce_ops: stride 2, reads a cell input
        self.affine_ops = bool(affine_ops)
        with self._candidate_norms():
            self.branch_ops = [[[make_op(name, self.filters, 1) for name in self.op_names]
                                if (i > 0 or not self.reduction) else [] for _ in range(2)]
                               for i in range(self.num_blocks)]
            self.reduce_ops = [[[make_op(name, self.filters, 2) for name in self.op_names]
                                for _ in range(2)] for _ in range(self.num_blocks)] \
                if self.reduction else []
        self.drop_paths = [[DropPath(self.drop_path_rate,
                                     None if seed is None else seed + 2 * i + k)
                            for k in range(2)] for i in range(self.num_blocks)] \
            if self.drop_path_rate > 0.0 else []

    # -- shapes --------------------------------------------------------------------------------

    def build(self, input_shape):
        pp_shape, p_shape = input_shape[0], input_shape[1]
        pp, p = _spatial(pp_shape), _spatial(p_shape)
        if pp == p:
            self.preprocess0 = ReLUConvBN(self.filters, 1)
        elif tuple(_halved(d) for d in pp) == p:
            self.preprocess0 = FactorizedReduce(self.filters)
        else:
            raise ValueError(f"SuperCell inputs must have the same spatial size, or h_prev_prev "
                             f"twice h_prev's; got {pp} and {p}")
        self.preprocess0.build(tuple(pp_shape))
        self.preprocess1.build(tuple(p_shape))
        n, h, w = p_shape[0], p[0], p[1]
        self._state_shape = (h, w, self.filters)
        with self._candidate_norms():  # adapters chosen at build time are candidate ops too
            for per_branch in self.branch_ops:
                for candidates in per_branch:
                    for op in candidates:
                        op.build((n, *self._block_input_shape(h, w)))
            for per_branch in self.reduce_ops:
                for candidates in per_branch:
                    for op in candidates:
                        op.build((n, h, w, self.filters))
        self.built = True

    def op_layer(self, i, k, index, j):
        """The layer that runs op ``j`` on hidden state ``index`` in branch ``k`` of block ``i``
        (a stride-2 one in a reduction cell reading a cell input)."""
        table = self.reduce_ops if self.reduction and index < 2 else self.branch_ops
        return table[i][k][j]

    def candidate_layers(self):
        """Every candidate op layer of the cell, each once."""
        return [op for table in (self.branch_ops, self.reduce_ops) for per_branch in table
                for candidates in per_branch for op in candidates]

    def _candidate_norms(self):
        return contextlib.nullcontext() if self.affine_ops else affine_free_norms()

    def _block_input_shape(self, h, w):
        """Shape of a block output (what stride-1 ops read): reduced in a reduction cell."""
        if self.reduction:
            return (_halved(h), _halved(w), self.filters)
        return (h, w, self.filters)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape[1]
        if self.reduction:
            h, w = _halved(h), _halved(w)
        return (n, h, w, self.num_blocks * self.filters)

    # -- the decisions -------------------------------------------------------------------------

    def decisions(self, arch):
        """(inputs, op choices) as ``(num_blocks, 2)`` int tensors."""
        table = ops.reshape(ops.cast(arch, "int32"), (self.num_blocks, DECISIONS_PER_BLOCK))
        return table[:, :2], table[:, 2:]

    def reads(self, arch):
        """Per hidden state (``num_blocks + 2``), whether some block reads it: a bool tensor."""
        inputs, _ = self.decisions(arch)
        states = ops.arange(self.num_blocks + 2, dtype="int32")
        return ops.any(ops.equal(ops.reshape(inputs, (-1, 1)), states[None, :]), axis=0)

    def loose_mask(self, arch):
        """Per output channel (``num_blocks * filters``), 1.0 where a loose end is, else 0.0."""
        loose = ops.logical_not(self.reads(arch)[2:])
        return ops.repeat(ops.cast(loose, "float32"), self.filters)

    # -- forward -------------------------------------------------------------------------------

    def _preprocess(self, layer, x, read, training):
        n = ops.shape(x)[0]
        return ops.switch(_flag(read), [
            lambda: ops.zeros((n, *self._state_shape), dtype=self.compute_dtype),  # unread
            lambda: layer(x, training=training)])

    def _branch(self, i, k, index, op, states, training):
        """Branch ``k`` of block ``i``: the chosen op on the chosen state."""
        def apply(candidates, x):
            return ops.switch(ops.clip(op, 0, len(candidates) - 1),
                              [lambda layer=layer: layer(x, training=training)
                               for layer in candidates])

        if not self.reduction:
            y = apply(self.branch_ops[i][k], _select(index, states))
        elif i == 0:  # block 0 of a reduction cell can only read the (larger) cell inputs
            y = apply(self.reduce_ops[i][k], _select(index, states[:2]))
        else:
            y = ops.switch(_flag(index >= 2), [
                lambda: apply(self.reduce_ops[i][k], _select(index, states[:2])),
                lambda: apply(self.branch_ops[i][k], _select(index - 2, states[2:]))])
        if self.drop_paths:
            dropped = self.drop_paths[i][k](y, training=training)
            y = dropped if self.identity is None else ops.where(op == self.identity, y, dropped)
        return y

    def call(self, inputs, arch, training=None):
        h_prev_prev, h_prev = inputs
        inputs_table, ops_table = self.decisions(arch)
        read = self.reads(arch)
        states = [self._preprocess(self.preprocess0, h_prev_prev, read[0], training),
                  self._preprocess(self.preprocess1, h_prev, read[1], training)]
        for i in range(self.num_blocks):
            a, b = (self._branch(i, k, inputs_table[i, k], ops_table[i, k], states, training)
                    for k in range(2))
            states.append(a + b)
        blocks = states[2:]
        loose = ops.logical_not(read[2:])
        outputs = [blocks[j] * ops.cast(loose[j], blocks[j].dtype) for j in range(len(blocks) - 1)]
        outputs.append(blocks[-1])  # the last block is always a loose end
        return ops.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]

    # -- which weights a path uses -------------------------------------------------------------

    def update_groups(self, arch, mask0=None, mask1=None):
        """``[(used, [(variable, mask)])]`` for this cell's trainable variables under ``arch``.

        ``used`` is a bool scalar tensor: the group's variables take part in the path.
        ``mask0`` / ``mask1`` are the producers' loose-end channel masks (None for the stem):
        the preprocessing kernels read those channels only, so only those rows may move.
        """
        inputs_table, ops_table = self.decisions(arch)
        read = self.reads(arch)
        groups = []
        for layer, used, mask in ((self.preprocess0, read[0], mask0),
                                  (self.preprocess1, read[1], mask1)):
            groups.append((used, [(v, _input_channel_mask(v, mask))
                                  for v in layer.trainable_variables]))
        for i in range(self.num_blocks):
            for k in range(2):
                index, op = inputs_table[i, k], ops_table[i, k]
                for j in range(len(self.op_names)):
                    chosen = ops.equal(op, j)
                    if self.branch_ops[i][k]:
                        stride1 = chosen if not self.reduction \
                            else ops.logical_and(chosen, index >= 2)
                        groups.append((stride1, _plain(self.branch_ops[i][k][j])))
                    if self.reduce_ops:
                        groups.append((ops.logical_and(chosen, index < 2),
                                       _plain(self.reduce_ops[i][k][j])))
        return [(used, members) for used, members in groups if members]


def _plain(layer):
    return [(v, None) for v in layer.trainable_variables]


def _input_channel_mask(variable, mask):
    """A convolution kernel ``(kh, kw, C_in, C_out)`` of a preprocessing layer reads the cell
    input's channels: its rows move only where the mask is 1. Other variables: no mask."""
    if mask is None or len(variable.shape) != 4:
        return None
    return ops.reshape(mask, (1, 1, -1, 1))


class SuperNet(keras.Model):
    """Every candidate network of ``space``: ``supernet([images, arch], training=...)``.

    ``arch`` is ``supernet.encode(genotype)`` (``space.encode``), an int vector; images are
    ``(N, *input_shape)``. Outputs class probabilities (float32), as ``build_network``'s model.
    Arguments as :func:`cells.build_network` (no auxiliary head), ``affine_ops``: whether
    the candidate ops' batch norms have a scale and shift (False by default), and
    ``loose_mean``: whether the classifier's input is divided by the last cell's count of
    loose ends (see the module).

    ``call_count`` counts Python executions of ``call``: eager calls and graph traces. A traced
    function scoring many genotypes leaves it unchanged after its first trace.
    """

    def __init__(self, space, num_classes: int = 10, filters: int = 16, cells_per_stage: int = 2,
                 stem_multiplier: int = 3, input_shape=(32, 32, 3), drop_path_rate: float = 0.0,
                 seed: int | None = None, affine_ops: bool = False, loose_mean: bool = False,
                 name: str | None = None):
        self.space = check_space(space, edges=False)
        super().__init__(name=name or f"{self.space.name}_supernet")
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.filters = check_int("filters", filters, 2)
        self.cells_per_stage = check_int("cells_per_stage", cells_per_stage, 0)
        self.stem_multiplier = check_int("stem_multiplier", stem_multiplier, 1)
        self.drop_path_rate = check_rate(drop_path_rate, "drop_path_rate")
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3):
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
        self.image_shape = tuple(input_shape)
        self.affine_ops = bool(affine_ops)
        self.loose_mean = bool(loose_mean)
        self.call_count = 0
        self.stem_conv = layers.Conv2D(stem_multiplier * filters, 3, padding="same",
                                       use_bias=False, name="stem_conv")
        self.stem_bn = batch_norm(name="stem_bn")
        self.super_cells = [
            SuperCell(self.space.ops, self.space.num_blocks, width, reduction=reduction,
                      drop_path_rate=drop_path_rate,
                      seed=None if seed is None else seed + 100 * index,
                      affine_ops=self.affine_ops, name=cell_name(index, reduction))
            for index, (_, reduction, width) in enumerate(cell_layout(filters, cells_per_stage))]
        self.head_bn = batch_norm(name="head_bn", affine=False)
        self.classifier = layers.Dense(num_classes, name="predictions_logits")
        self.softmax = layers.Activation("softmax", dtype="float32", name="predictions")
        self._build_everything()
        self._bn_layers = _batch_norms(self)

    def _build_everything(self):
        """Build every layer with its shape: a traced call builds only the chosen branches."""
        shape = (None, *self.image_shape)
        self.stem_conv.build(shape)
        stem = self.stem_conv.compute_output_shape(shape)
        self.stem_bn.build(stem)
        pp, p = stem, stem
        for cell in self.super_cells:
            cell.build([pp, p])
            pp, p = p, cell.compute_output_shape([pp, p])
        self.head_bn.build((None, p[-1]))
        self.classifier.build((None, p[-1]))
        self.built = True

    @property
    def arch_length(self) -> int:
        """Length of ``encode(genotype)``: 4 decisions per block, normal then reduction cell."""
        return 2 * DECISIONS_PER_BLOCK * self.space.num_blocks

    def encode(self, genotype) -> np.ndarray:
        """The int32 architecture vector of ``genotype`` (validated against the space)."""
        return np.asarray(self.space.encode(genotype), dtype="int32")

    def _cell_arch(self, arch, cell):
        half = self.arch_length // 2
        return arch[half:] if cell.reduction else arch[:half]

    def call(self, inputs, training=None, bn_momentum=None):
        """``bn_momentum`` (a float or a scalar tensor) replaces every batch norm's momentum for
        this call: with training=True, 0.0 sets the moving statistics to this batch's, and
        ``k / (k + 1)`` at the k-th batch keeps their exact running mean (BN recalibration);
        1.0 leaves them as they are (batch statistics without touching the moving ones)."""
        self.call_count += 1
        if bn_momentum is None:
            return self._forward(inputs, training)
        saved = [bn.momentum for bn in self._bn_layers]
        try:
            for bn in self._bn_layers:
                bn.momentum = bn_momentum
            return self._forward(inputs, training)
        finally:
            for bn, momentum in zip(self._bn_layers, saved):
                bn.momentum = momentum

    def _forward(self, inputs, training):
        images, arch = inputs
        arch = ops.cast(arch, "int32")
        x = self.stem_bn(self.stem_conv(images), training=training)
        h_prev_prev, h_prev = x, x
        for cell in self.super_cells:
            h_prev_prev, h_prev = h_prev, cell([h_prev_prev, h_prev], self._cell_arch(arch, cell),
                                               training=training)
        x = self.head_bn(ops.mean(ops.relu(h_prev), axis=(1, 2)), training=training)
        if self.loose_mean:
            x = x * self.head_scale(arch)
        return self.softmax(self.classifier(x))

    def head_scale(self, arch):
        """What the classifier's input is multiplied by: 1 / (the last cell's count of loose
        ends) with ``loose_mean``, else 1 (a float32 scalar tensor)."""
        if not self.loose_mean:
            return ops.convert_to_tensor(1.0, "float32")
        last = self.super_cells[-1]
        loose = ops.logical_not(last.reads(self._cell_arch(ops.cast(arch, "int32"), last))[2:])
        return 1.0 / ops.sum(ops.cast(loose, "float32"))

    def update_groups(self, arch):
        """``[(used, [(variable, mask)])]`` covering every trainable variable once.

        ``used``: a bool scalar tensor, or None for variables every path uses (stem). ``mask``:
        None, or a 0/1 tensor broadcastable to the variable, where the variable is used only in
        part (rows of a kernel reading a previous cell's loose ends). Call inside the traced
        training step: the flags are computed from ``arch``.
        """
        arch = ops.cast(arch, "int32")
        groups = [(None, [(v, None) for v in self.stem_conv.trainable_variables
                          + self.stem_bn.trainable_variables])]
        mask_pp = mask_p = None  # the stem: every channel is read
        for cell in self.super_cells:
            cell_arch = self._cell_arch(arch, cell)
            groups += cell.update_groups(cell_arch, mask_pp, mask_p)
            mask_pp, mask_p = mask_p, cell.loose_mask(cell_arch)
        kernel, bias = self.classifier.kernel, self.classifier.bias
        groups.append((None, [(kernel, ops.reshape(mask_p, (-1, 1))), (bias, None)]))
        return groups

    # -- standalone networks -------------------------------------------------------------------

    def extract(self, genotype) -> keras.Model:
        """``cells.build_network(genotype, ...)`` at this supernet's sizes with the weights of
        ``genotype``'s path: its predictions equal the supernet's for that genotype."""
        from cells.supernet_paths import extract

        return extract(self, genotype)

    def path_params(self, genotype) -> int:
        """Parameters of the standalone network of ``genotype`` (``extract(g).count_params()``),
        counted from the supernet's shapes without building it."""
        from cells.supernet_paths import path_params

        return path_params(self, genotype)
