"""Published cells as genotypes: ``PUBLISHED[name]`` for nasnet-a, amoebanet-a, enas and darts-v2.

Hidden states follow the papers and DARTS's ``genotypes.py``: 0 = the cell before the previous
one, 1 = the previous cell, 2.. = the blocks. Each cell below is written as its blocks, each block
as its two ``(op, input)`` branches, in the order of the cited source (``Block`` sorts them).

What the translation cannot keep. Our cell's output is always the concatenation of its loose
ends (``CellSpec.concat``), the NASNet/AmoebaNet/ENAS rule. Two sources concatenate more:
- NASNet-A in keras ``applications/nasnet.py`` (and TF-slim) also concatenates h[i-2] in the
  normal cell, and block 2 (state 3) in the reduction cell although block 4 reads it. DARTS's
  ``genotypes.py`` translation uses the loose-end rule (``normal_concat = [2..6]``,
  ``reduce_concat = [4, 5, 6]``), as we do.
- DARTS cells concatenate every intermediate node (``range(2, 6)``), used or not. For DARTS_V2
  our loose ends are nodes 3, 4, 5 in both cells: node 2 is read by another node and is not
  concatenated, so the network is narrower than DARTS's (3 instead of 4 nodes per cell output).
"""

from __future__ import annotations

from search_space.genotype import Block, CellSpec, Genotype

# DARTS op names that differ from ours. DARTS's dil_conv_3x3 (``DilConv``: ReLU, dilated
# depthwise conv, pointwise conv, BN) is a dilated *separable* conv: our dil_sep_conv_3x3, not our
# dil_conv_3x3 (NASNet's plain dilated conv). DARTS's 'none' (zero op) has no counterpart; no cell
# here uses it.
_DARTS_NAMES = {
    "skip_connect": "identity",
    "dil_conv_3x3": "dil_sep_conv_3x3",
    "conv_7x1_1x7": "conv_1x7_7x1",
}

# ENAS micro-search op ids (melodyguan/enas README, "micro cell" section, and micro_child.py).
_ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")


def _cell(*blocks) -> CellSpec:
    """A cell from blocks given as ``((op, input), (op, input))`` in DARTS's notation."""
    return CellSpec(tuple(
        Block(inputs=(a[1], b[1]), ops=(_DARTS_NAMES.get(a[0], a[0]), _DARTS_NAMES.get(b[0], b[0])))
        for a, b in blocks))


def _enas_cell(arc: str) -> CellSpec:
    """A cell from an ENAS micro arc: per block ``index_1 op_1 index_2 op_2`` (op ids above)."""
    ids = [int(token) for token in arc.split()]
    return CellSpec(tuple(
        Block(inputs=(ids[j], ids[j + 2]), ops=(_ENAS_OPS[ids[j + 1]], _ENAS_OPS[ids[j + 3]]))
        for j in range(0, len(ids), 4)))


PUBLISHED: dict[str, Genotype] = {
    # NASNet-A (Zoph et al. 2018, "Learning Transferable Architectures for Scalable Image
    # Recognition", Fig. 4), as built by keras applications/nasnet.py (_normal_a_cell,
    # _reduction_a_cell; there h = ip = state 1, p = state 0) and as quark0/darts cnn/genotypes.py
    # NASNet transcribes it. See the module docstring for the concatenated outputs.
    "nasnet-a": Genotype(
        space="nasnet",
        normal=_cell(
            (("sep_conv_5x5", 1), ("sep_conv_3x3", 0)),
            (("sep_conv_5x5", 0), ("sep_conv_3x3", 0)),
            (("avg_pool_3x3", 1), ("skip_connect", 0)),
            (("avg_pool_3x3", 0), ("avg_pool_3x3", 0)),
            (("sep_conv_3x3", 1), ("skip_connect", 1)),
        ),
        reduction=_cell(
            (("sep_conv_5x5", 1), ("sep_conv_7x7", 0)),
            (("max_pool_3x3", 1), ("sep_conv_7x7", 0)),
            (("avg_pool_3x3", 1), ("sep_conv_5x5", 0)),
            (("skip_connect", 3), ("avg_pool_3x3", 2)),
            (("sep_conv_3x3", 2), ("max_pool_3x3", 1)),
        ),
    ),
    # AmoebaNet-A (Real et al. 2019, "Regularized Evolution for Image Classifier Architecture
    # Search", Fig. 8), as quark0/darts cnn/genotypes.py AmoebaNet transcribes it (its concat
    # lists, normal [4, 5, 6] and reduce [3, 4, 6], are exactly the loose ends).
    "amoebanet-a": Genotype(
        space="amoebanet",
        normal=_cell(
            (("avg_pool_3x3", 0), ("max_pool_3x3", 1)),
            (("sep_conv_3x3", 0), ("sep_conv_5x5", 2)),
            (("sep_conv_3x3", 0), ("avg_pool_3x3", 3)),
            (("sep_conv_3x3", 1), ("skip_connect", 1)),
            (("skip_connect", 0), ("avg_pool_3x3", 1)),
        ),
        reduction=_cell(
            (("avg_pool_3x3", 0), ("sep_conv_3x3", 1)),
            (("max_pool_3x3", 0), ("sep_conv_7x7", 2)),
            (("sep_conv_7x7", 0), ("avg_pool_3x3", 1)),
            (("max_pool_3x3", 0), ("max_pool_3x3", 1)),
            (("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)),
        ),
    ),
    # ENAS micro cell (Pham et al. 2018, "Efficient Neural Architecture Search via Parameter
    # Sharing"): the fixed_arc of the authors' melodyguan/enas scripts/cifar10_micro_final.sh,
    # normal then reduction, decoded with the README's op ids. micro_child.py concatenates the
    # unused states, i.e. the loose ends (here [2..6] and [2, 4, 5, 6]). DARTS-style "ENAS"
    # genotypes found in third-party repositories differ from this arc; we follow the authors'.
    # Its 5 ops are a subset of NASNet's and B = 5, so it lives in the nasnet space.
    "enas": Genotype(
        space="nasnet",
        normal=_enas_cell("0 2 0 0  0 4 0 1  0 4 1 1  1 0 0 1  0 2 1 1"),
        reduction=_enas_cell("1 0 1 0  0 3 0 2  1 1 3 1  1 0 0 4  0 3 1 1"),
    ),
    # DARTS (second order) cell (Liu et al. 2019, "DARTS: Differentiable Architecture Search"):
    # quark0/darts cnn/genotypes.py DARTS_V2. Four nodes per cell, so it lives in the 'darts'
    # space (B = 4). dil_conv_3x3 becomes dil_sep_conv_3x3 (see _DARTS_NAMES); DARTS
    # concatenates nodes 2..5, we concatenate the loose ends 3..5 (module docstring).
    "darts-v2": Genotype(
        space="darts",
        normal=_cell(
            (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)),
            (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)),
            (("sep_conv_3x3", 1), ("skip_connect", 0)),
            (("skip_connect", 0), ("dil_conv_3x3", 2)),
        ),
        reduction=_cell(
            (("max_pool_3x3", 0), ("max_pool_3x3", 1)),
            (("skip_connect", 2), ("max_pool_3x3", 1)),
            (("max_pool_3x3", 0), ("skip_connect", 2)),
            (("skip_connect", 2), ("max_pool_3x3", 1)),
        ),
    ),
}
