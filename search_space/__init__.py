"""Search spaces and genotypes as data (numpy only: this package builds no models).

    from search_space import Genotype, get_space, PUBLISHED, load_genotype
    space = get_space("amoebanet")
    g = space.sample(np.random.default_rng(0))      # a random genotype of the space
    child = space.mutate(g, rng)                     # AmoebaNet's hidden-state / op mutation
    Genotype.from_json(g.to_json()) == g             # exact JSON round trip
    load_genotype("nasnet-a"); load_genotype("runs/x/best_genotype.json")
    nb201 = get_space("nb201")                       # NAS-Bench-201's cell: an op on each edge
    g = nb201.from_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|"
                            "nor_conv_3x3~1|nor_conv_1x1~2|"); nb201.to_arch_str(g)
"""

from __future__ import annotations

import json
import os

from search_space.edge_genotype import EdgeGenotype
from search_space.edge_space import NB201_OPS, EdgeSpace
from search_space.genotype import Block, CellSpec, Genotype, GenotypeError
from search_space.published import PUBLISHED
from search_space.spaces import SPACE_TYPES, SPACES, SearchSpace, get_space, register_space

GENOTYPE_TYPES = (Genotype, EdgeGenotype)
"""The kinds of genotype: two cells of blocks (NASNet's), or ops on DAG edges (NAS-Bench-201's)."""

__all__ = [
    "Block", "CellSpec", "Genotype", "GenotypeError", "EdgeGenotype", "GENOTYPE_TYPES",
    "SearchSpace", "EdgeSpace", "SPACE_TYPES", "NB201_OPS", "get_space", "register_space",
    "SPACES", "PUBLISHED", "load_genotype", "parse_arch_str",
]


def parse_arch_str(text: str) -> EdgeGenotype:
    """A NAS-Bench-201 cell string (``|nor_conv_3x3~0|+|...|``) as an ``nb201`` genotype;
    a malformed one is a ``ValueError`` naming the bad part."""
    return get_space("nb201").from_arch_str(text)


def load_genotype(name_or_path: str | os.PathLike) -> Genotype:
    """A published cell by name (``"nasnet-a"``, case-insensitive), a NAS-Bench-201 cell string
    (``"|nor_conv_3x3~0|+|...|"``) or a genotype JSON file.

    The file holds ``Genotype.to_json()``, or a JSON object with a ``"genotype"`` key holding it
    (a trials.jsonl record). The loaded genotype is validated against the space it names, so an
    unknown space or op fails here rather than when a network is built. Every problem is a
    ``ValueError`` naming the unknown name (and the published ones) or the file and its problem.
    """
    if isinstance(name_or_path, GENOTYPE_TYPES):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"genotype: expected a published name or a JSON file path, "
                         f"got {type(name_or_path).__name__}")
    key = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and key.strip().lower() in PUBLISHED:
        return PUBLISHED[key.strip().lower()]
    if isinstance(name_or_path, str) and key.strip().startswith("|"):
        return parse_arch_str(key)
    if not os.path.exists(key):
        raise ValueError(f"unknown genotype {key!r}: not a published cell "
                         f"({', '.join(PUBLISHED)}) and no file at that path")
    if os.path.isdir(key):
        raise ValueError(f"{key}: is a directory; expected a genotype JSON file "
                         f"(e.g. {os.path.join(key, 'best_genotype.json')})")
    try:
        with open(key, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{key}: cannot read the genotype file: {e}") from None
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "genotype" in data and "normal" not in data:
            data = data["genotype"]
        genotype = Genotype.from_dict(data)
        get_space(genotype.space).validate(genotype)
    except json.JSONDecodeError as e:
        raise ValueError(f"{key}: malformed JSON at line {e.lineno} column {e.colno}: "
                         f"{e.msg}") from None
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None
    return genotype
