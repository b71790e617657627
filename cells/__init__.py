"""Keras 3 building blocks for cell-based NAS: the op registry, the classic blocks, cells, networks
(NASNet's two-cell networks, and NAS-Bench-201's edge cells: ``cells.nb201``).

Only ``keras.layers`` and ``keras.ops`` are used here, so everything runs on any Keras 3 backend.
"""

from cells.blocks import BLOCKS, block_op, get_block
from cells.ops import BN_EPSILON, BN_MOMENTUM, OPS, get_op, make_op, register_op
from cells.cell import Cell, DropPath
from cells.nb201 import EdgeCell, ResidualReduction, Zero, build_nb201_network
from cells.network import build_network

__all__ = ["BN_EPSILON", "BN_MOMENTUM", "OPS", "get_op", "make_op", "register_op",
           "BLOCKS", "block_op", "get_block",
           "Cell", "DropPath", "build_network",
           "EdgeCell", "ResidualReduction", "Zero", "build_nb201_network"]
