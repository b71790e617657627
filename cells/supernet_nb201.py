"""The weight-sharing supernet of an edge space (``nb201``): every op on every edge, one model.

The simplest case of ``cells.supernet``. :class:`EdgeSuperNet` has NAS-Bench-201's
macro-structure (``cells.nb201.build_nb201_network``: stem, N cells, a residual reduction, N
cells, a residual reduction, N cells, BN-ReLU, global pooling, classifier) and, on every edge of
every cell, every op of the space; the op a path runs is picked by a ``keras.ops.switch`` on the
architecture tensor, ``space.encode(genotype)`` (one op index per edge in NAS-Bench-201's order,
the same for every cell), so one traced graph serves every candidate and an unchosen op costs
nothing. ``none`` is the standalone network's ``Zero`` (zeros, no weights).

There is nothing to choose but ops: every node sums all of its edges and the cell's output is
its last node, ``filters`` wide whatever the genotype. So the stem, the reductions, the head's
batch norm and the classifier are on every path; there are no loose ends to mask, and no extra
head norm is needed (the network's own batch norm before the pooling, recalibrated per path,
fixes the scale a wiring gives the features). :meth:`EdgeSuperNet.extract` copies the path's
weights into ``cells.build_network(genotype)`` as they are, nothing sliced or folded.

As in ``SuperNet``: the candidate ops' batch norms are affine-free by default (``affine_ops``;
the standalone ones get scale 1 and shift 0, the same function), ``update_groups`` says which
variables a path uses (the masked SGD moves no other), ``bn_momentum`` recalibrates a path's
statistics, and ``call_count`` counts traces.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import layers, ops

from cells.nb201 import NB201_CELLS_PER_STAGE, ResidualReduction, as_edge_genotype
from cells.ops import affine_free_norms, batch_norm, check_filters, check_int, make_op
from cells.supernet_paths import _batch_norms, _standalone_weights


def _edge_genotype(genotype):
    """An ``EdgeGenotype`` from itself or its dict; anything else as it is, for the space's
    ``validate`` to refuse in its words."""
    return as_edge_genotype(genotype) if isinstance(genotype, dict) else genotype


def _edges(num_nodes: int) -> list[tuple[int, int]]:
    """``(source, target)`` of every edge in the space's decision order (by target, then
    source): ``EdgeSpace.encode`` gives the op index of edge ``k`` at position ``k``."""
    return [(i, j) for j in range(1, num_nodes) for i in range(j)]


class SuperEdgeCell(layers.Layer):
    """Every cell of an edge space at one position: ``cell(x, arch)``, ``arch`` one op index per
    edge. ``edge_ops[j - 1][i][k]`` is op ``k`` of the edge ``i -> j`` (``EdgeCell.edge_ops``
    with a candidate list where the standalone cell has one op)."""

    def __init__(self, op_names, num_nodes: int, filters: int, affine_ops: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.op_names = tuple(op_names)
        self.num_nodes = check_int("num_nodes", num_nodes, 2)
        self.filters = check_filters(filters)
        self.affine_ops = bool(affine_ops)
        with self._candidate_norms():
            self.edge_ops = [[[make_op(name, self.filters, 1) for name in self.op_names]
                              for _ in range(j)] for j in range(1, self.num_nodes)]

    def _candidate_norms(self):
        return contextlib.nullcontext() if self.affine_ops else affine_free_norms()

    def candidates(self) -> list[list]:
        """The candidate lists of every edge, in decision order."""
        return [per_edge for incoming in self.edge_ops for per_edge in incoming]

    def build(self, input_shape):
        node = (*tuple(input_shape)[:-1], self.filters)
        with self._candidate_norms():  # adapters chosen at build time are candidate ops too
            for (i, _), candidates in zip(_edges(self.num_nodes), self.candidates()):
                for op in candidates:
                    op.build(tuple(input_shape) if i == 0 else node)
        self.built = True

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.filters)

    def call(self, x, arch, training=None):
        arch = ops.cast(arch, "int32")
        nodes, edge = [x], 0
        for incoming in self.edge_ops:
            total = None
            for source, candidates in zip(nodes, incoming):
                y = ops.switch(ops.clip(arch[edge], 0, len(candidates) - 1),
                               [lambda op=op, s=source: op(s, training=training)
                                for op in candidates])
                total = y if total is None else total + y  # EdgeCell's order of the sum
                edge += 1
            nodes.append(total)
        return nodes[-1]

    def update_groups(self, arch):
        """``[(used, [(variable, None)])]`` for the candidate ops with variables: op ``k`` of
        edge ``e`` is used when ``arch[e] == k``."""
        arch = ops.cast(arch, "int32")
        return [(ops.equal(arch[e], k), [(v, None) for v in op.trainable_variables])
                for e, candidates in enumerate(self.candidates())
                for k, op in enumerate(candidates) if op.trainable_variables]


class EdgeSuperNet(keras.Model):
    """Every NAS-Bench-201 network of an edge ``space``: ``supernet([images, arch])``.

    ``arch`` is ``supernet.encode(genotype)``; outputs class probabilities (float32), as
    ``cells.build_network(genotype)``. Sizes as ``build_nb201_network`` (``cells_per_stage``
    defaults to its 5); ``affine_ops`` as ``SuperNet``'s. ``loose_mean`` must be False: an edge
    cell has no loose ends (the argument is there because the trainer passes every supernet the
    same settings).
    """

    def __init__(self, space, num_classes: int = 10, filters: int = 16,
                 cells_per_stage: int = NB201_CELLS_PER_STAGE, input_shape=(32, 32, 3),
                 affine_ops: bool = False, loose_mean: bool = False, name: str | None = None):
        from search_space import EdgeSpace, get_space

        space = get_space(space) if isinstance(space, str) else space
        if not isinstance(space, EdgeSpace):
            raise ValueError(f"EdgeSuperNet holds an edge space (ops on DAG edges, e.g. "
                             f"'nb201'), not {getattr(space, 'name', space)!r}; a space of "
                             f"blocks has cells.supernet.SuperNet")
        if loose_mean:
            raise ValueError(f"loose_mean: space {space.name!r} has no loose ends (a cell's "
                             f"output is its last node); pass loose_mean=False")
        self.space = space
        super().__init__(name=name or f"{space.name}_supernet")
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.filters = check_filters(filters)
        self.cells_per_stage = check_int("cells_per_stage", cells_per_stage, 0)
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3):
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
        self.image_shape = tuple(input_shape)
        self.affine_ops, self.loose_mean = bool(affine_ops), False
        self.call_count = 0
        self.stem_conv = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                       name="stem_conv")
        self.stem_bn = batch_norm(name="stem_bn")
        self.stages = self._stages()
        self.head_bn = batch_norm(name="head_bn")
        self.classifier = layers.Dense(num_classes, name="predictions_logits")
        self.softmax = layers.Activation("softmax", dtype="float32", name="predictions")
        self._build_everything()
        self._bn_layers = _batch_norms(self)

    def _stages(self) -> list:
        """Reductions and cells in order, named as ``build_nb201_network`` names them."""
        stages, index = [], 0
        for stage in range(3):
            width = self.filters * 2 ** stage
            if stage > 0:
                stages.append(ResidualReduction(width, name=f"reduction_{index}"))
                index += 1
            for _ in range(self.cells_per_stage):
                stages.append(SuperEdgeCell(self.space.ops, self.space.num_nodes, width,
                                            affine_ops=self.affine_ops, name=f"cell_{index}"))
                index += 1
        return stages

    @property
    def super_cells(self) -> list[SuperEdgeCell]:
        return [layer for layer in self.stages if isinstance(layer, SuperEdgeCell)]

    def _build_everything(self):
        """Build every layer with its shape: a traced call builds only the chosen branches."""
        shape = (None, *self.image_shape)
        self.stem_conv.build(shape)
        shape = self.stem_conv.compute_output_shape(shape)
        self.stem_bn.build(shape)
        for layer in self.stages:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.head_bn.build(shape)
        self.classifier.build((None, shape[-1]))
        self.built = True

    @property
    def arch_length(self) -> int:
        """Length of ``encode(genotype)``: one op index per edge (6 for ``nb201``)."""
        return len(self.space.decision_sizes())

    def encode(self, genotype) -> np.ndarray:
        """The int32 architecture vector of ``genotype`` (validated against the space)."""
        return np.asarray(self.space.encode(_edge_genotype(genotype)), dtype="int32")

    def call(self, inputs, training=None, bn_momentum=None):
        """As ``SuperNet.call``: ``bn_momentum`` replaces every batch norm's momentum for this
        call (0.0 with training=True: this batch's statistics; 1.0: the moving ones kept)."""
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
        for layer in self.stages:
            x = layer(x, arch, training=training) if isinstance(layer, SuperEdgeCell) \
                else layer(x, training=training)
        x = ops.mean(ops.relu(self.head_bn(x, training=training)), axis=(1, 2))
        return self.softmax(self.classifier(x))

    def update_groups(self, arch):
        """``[(used, [(variable, mask)])]`` covering every trainable variable once (see
        ``SuperNet.update_groups``): the stem, reductions, head norm and classifier on every
        path (``used`` None), each candidate op with weights when its edge chooses it. No masks:
        every layer reads its input whole."""
        shared = [self.stem_conv, self.stem_bn, self.head_bn, self.classifier,
                  *(layer for layer in self.stages if not isinstance(layer, SuperEdgeCell))]
        groups = [(None, [(v, None) for layer in shared for v in layer.trainable_variables])]
        for cell in self.super_cells:
            groups += cell.update_groups(arch)
        return groups

    def grow_from(self, shallow: EdgeSuperNet) -> None:
        """Take the weights of ``shallow``, a supernet of this space and width with fewer cells a
        stage: the stem, the reductions, the head and the classifier as they are, and every cell
        of a stage a copy of ``shallow``'s last cell of that stage (its weights and batch-norm
        statistics). A deep supernet grown from a trained shallow one starts training where the
        shallow one ended (``OneShotConfig.shallow_epochs``)."""
        if not isinstance(shallow, EdgeSuperNet) or shallow.space.name != self.space.name \
                or shallow.filters != self.filters or shallow.affine_ops != self.affine_ops:
            raise ValueError(f"grow_from: needs an EdgeSuperNet of space {self.space.name!r}, "
                             f"{self.filters} filters, affine_ops={self.affine_ops}")
        if not 1 <= shallow.cells_per_stage <= self.cells_per_stage:
            raise ValueError(f"grow_from: a supernet of {shallow.cells_per_stage} cell(s) a stage "
                             f"cannot seed one of {self.cells_per_stage}")
        for mine, theirs in zip(self._by_stage(), shallow._by_stage(), strict=True):
            cell = theirs["cells"][-1]
            for layer in mine["cells"]:
                layer.set_weights(cell.get_weights())
            if mine["reduction"] is not None:
                mine["reduction"].set_weights(theirs["reduction"].get_weights())
        for name in ("stem_conv", "stem_bn", "head_bn", "classifier"):
            getattr(self, name).set_weights(getattr(shallow, name).get_weights())

    def _by_stage(self) -> list[dict]:
        """``[{"reduction": layer or None, "cells": [...]}]``, one per stage, in order."""
        stages = [{"reduction": None, "cells": []}]
        for layer in self.stages:
            if isinstance(layer, SuperEdgeCell):
                stages[-1]["cells"].append(layer)
            else:
                stages.append({"reduction": layer, "cells": []})
        return stages

    # -- standalone networks -------------------------------------------------------------------

    def _pairs(self, genotype) -> list[tuple]:
        """``[(supernet layer, standalone locator)]`` of the path: ``(layer name,)``, or
        ``(cell name, j - 1, i)`` for the op of edge ``i -> j``."""
        genotype = self.space.validate(_edge_genotype(genotype))
        pairs = [(self.stem_conv, ("stem_conv",)), (self.stem_bn, ("stem_bn",))]
        for layer in self.stages:
            if not isinstance(layer, SuperEdgeCell):
                pairs.append((layer, (layer.name,)))
                continue
            for i, j, op in genotype.edges():
                pairs.append((layer.edge_ops[j - 1][i][self.space.ops.index(op)],
                              (layer.name, j - 1, i)))
        return pairs + [(self.head_bn, ("head_bn",)), (self.classifier, ("predictions_logits",))]

    def extract(self, genotype) -> keras.Model:
        """``cells.build_network(genotype, ...)`` at this supernet's sizes with the weights of
        ``genotype``'s path: its predictions equal the supernet's for that genotype."""
        from cells.network import build_network

        pairs = self._pairs(genotype)  # validated first
        model = build_network(_edge_genotype(genotype), num_classes=self.num_classes,
                              filters=self.filters, cells_per_stage=self.cells_per_stage,
                              input_shape=self.image_shape)
        copied = 0
        for source, locator in pairs:
            target = model.get_layer(locator[0])
            if len(locator) == 3:
                target = target.edge_ops[locator[1]][locator[2]]
            weights, targets = _standalone_weights(source), target.get_weights()
            if [w.shape for w in weights] != [t.shape for t in targets]:
                raise RuntimeError(f"{locator}: the supernet layer's weights have shapes "
                                   f"{[w.shape for w in weights]}, the standalone one's "
                                   f"{[t.shape for t in targets]}")
            target.set_weights(weights)
            copied += len(targets)
        if copied != len(model.weights):
            raise RuntimeError(f"extract: copied {copied} of the standalone network's "
                               f"{len(model.weights)} weights")
        return model

    def path_params(self, genotype) -> int:
        """Parameters of the standalone network of ``genotype`` (``extract(g).count_params()``),
        counted from the supernet's shapes without building it."""
        total = 0
        for source, _ in self._pairs(genotype):
            total += sum(2 * int(bn.moving_mean.shape[0]) for bn in _batch_norms(source)
                         if not bn.scale)  # the standalone norm's scale and shift
            total += sum(int(np.prod(w.shape)) for w in source.weights)
        return total
