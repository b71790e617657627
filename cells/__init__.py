"""Keras 3 building blocks for cell-based NAS: the op registry, the classic blocks, cells, networks.

Only ``keras.layers`` and ``keras.ops`` are used here, so everything runs on any Keras 3 backend.
"""

from cells.blocks import BLOCKS, block_op, get_block
from cells.ops import BN_EPSILON, BN_MOMENTUM, OPS, get_op, make_op, register_op
from cells.cell import Cell, DropPath
from cells.network import build_network

__all__ = ["BN_EPSILON", "BN_MOMENTUM", "OPS", "get_op", "make_op", "register_op",
           "BLOCKS", "block_op", "get_block",
           "Cell", "DropPath", "build_network"]
