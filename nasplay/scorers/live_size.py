"""The parameters that can change a network's output ("live"): the size signal of a cell.

A cell of a space with a zero op (``nb201``'s ``none``) can hold convolutions that read a node
carrying nothing of the image (every edge into it ``none``, or reading such nodes only), or whose
output no path reads. Their kernels count in the network's parameters but never learn: a
ReLU -> conv -> batch norm reading a constant gives the norm's shift whatever the kernel (its
gradient is zero). ``live_genotype`` sets those edges to the zero op (unlike ``space.canonical``,
which keeps a convolution reading zeros: its norm's shift is a learned constant, so the function
differs), and the live parameters are the count of that cell's network. On NAS-Bench-201's
fixed 200-cell sample they rank cells at Spearman 0.52 against the table, the plain count at 0.47
(identity cells in disguise, whose convolutions all read zeros, count as large); on a second
sample both rank at 0.37 (BENCHMARKS.md). In a space without a zero op the two counts are one.
"""

from __future__ import annotations

import json
from functools import lru_cache


def live_params(genotype, params: int, **build) -> int:
    """``params`` (the count of the network built from ``genotype``) when every op of
    ``genotype`` is live; else the count of its live form's network (:func:`live_genotype`),
    built with ``build`` (``cells.build_network``'s keywords: ``filters``, ``cells_per_stage``)."""
    from search_space import Genotype

    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)
    live = live_genotype(genotype)
    if live == genotype:
        return int(params)
    return _count(live.to_json(), tuple(sorted(build.items())))


def live_genotype(genotype):
    """``genotype`` with the zero op on every edge whose op cannot learn from the image: an edge
    reading a node that carries nothing of the image, or into a node the output does not read.
    A genotype of a space without a zero op (or not of edges) comes back as it is."""
    from search_space.edge_genotype import EdgeGenotype
    from search_space.edge_space import ZERO_OP

    if not isinstance(genotype, EdgeGenotype):
        return genotype
    ops = {(i, j): op for i, j, op in genotype.edges()}
    last = max(j for _, j in ops)
    informed = {0}                   # nodes carrying the image: the input, and what reads it
    for j in range(1, last + 1):
        if any(i in informed and ops[i, j] != ZERO_OP for i in range(j)):
            informed.add(j)
    read = {last}                    # nodes the output reads, directly or through others
    for i in range(last - 1, -1, -1):
        if any(ops[i, j] != ZERO_OP and j in read for j in range(i + 1, last + 1)):
            read.add(i)
    nodes = tuple(tuple(ops[i, j] if i in informed and j in read else ZERO_OP for i in range(j))
                  for j in range(1, last + 1))
    return EdgeGenotype(nodes=nodes, space=genotype.space)


@lru_cache(maxsize=4096)
def _count(genotype_json: str, build: tuple) -> int:
    """The parameter count of a genotype's network (built once per genotype and settings)."""
    from cells import build_network
    from search_space import Genotype

    network = build_network(Genotype.from_dict(json.loads(genotype_json)), **dict(build))
    return int(network.count_params())
