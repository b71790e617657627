"""Search spaces and genotypes as data (numpy only: this package builds no models).

    from search_space import Genotype, get_space, PUBLISHED, load_genotype
    space = get_space("amoebanet")
    g = space.sample(np.random.default_rng(0))      # a random genotype of the space
    child = space.mutate(g, rng)                     # AmoebaNet's hidden-state / op mutation
    Genotype.from_json(g.to_json()) == g             # exact JSON round trip
    load_genotype("nasnet-a"); load_genotype("runs/x/best_genotype.json")
"""

from __future__ import annotations

import json
import os

from search_space.genotype import Block, CellSpec, Genotype, GenotypeError
from search_space.published import PUBLISHED
from search_space.spaces import SPACES, SearchSpace, get_space, register_space

__all__ = [
    "Block", "CellSpec", "Genotype", "GenotypeError", "SearchSpace", "get_space",
    "register_space", "SPACES", "PUBLISHED", "load_genotype",
]


def load_genotype(name_or_path: str | os.PathLike) -> Genotype:
    """A published cell by name (``"nasnet-a"``, case-insensitive) or a genotype JSON file.

    The file holds ``Genotype.to_json()``, or a JSON object with a ``"genotype"`` key holding it
    (a trials.jsonl record). The loaded genotype is validated against the space it names, so an
    unknown space or op fails here rather than when a network is built. Every problem is a
    ``ValueError`` naming the unknown name (and the published ones) or the file and its problem.
    """
    if isinstance(name_or_path, Genotype):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"genotype: expected a published name or a JSON file path, "
                         f"got {type(name_or_path).__name__}")
    key = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and key.strip().lower() in PUBLISHED:
        return PUBLISHED[key.strip().lower()]
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
