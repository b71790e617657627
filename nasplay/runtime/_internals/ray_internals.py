"""Two answers Ray computes privately and nasplay needs before it starts Ray or a search:

- :func:`canonicalize_bootstrap_address`: ``--address`` as the HOST:PORT ``ray.init`` would
  connect to (``auto`` found, ``localhost`` made the node's address), so the plan can try a TCP
  connect and refuse an unreachable cluster in seconds (``nasplay.engine.plan._check_address``);
- :func:`has_unresolved_values`: whether a Tune ``param_space`` holds search distributions
  (``tune.choice``, ``grid_search``), which ``searchers.ray_adapter.TuneSearcher`` refuses.

Private parts used (hence this module): ``ray._private.services.canonicalize_bootstrap_address``
and ``ray.tune.search.variant_generator._has_unresolved_values``, checked against Ray 2.60
(:data:`nasplay.runtime._internals.TESTED_RAY`, the range pinned in pyproject.toml). Any other
Ray: public-API equivalents, the same answers, except that ``auto`` with no ``RAY_ADDRESS`` set
is refused (finding the last cluster ``ray start`` began is Ray's private business: give its
HOST:PORT instead).
"""

from __future__ import annotations

import os

LOCALHOST = ("localhost", "127.0.0.1", "::1")


def canonicalize_bootstrap_address(address: str | None) -> str | None:
    """HOST:PORT of the cluster ``address`` names; ``None``: start a local Ray. Raises
    ``ConnectionError`` (``auto`` finds no cluster) or ``ValueError`` (not HOST:PORT)."""
    from nasplay.runtime._internals import tested_ray

    if tested_ray():
        from ray._private.services import canonicalize_bootstrap_address as canonicalize

        return canonicalize(address)
    return public_canonicalize_bootstrap_address(address)


def public_canonicalize_bootstrap_address(address: str | None) -> str | None:
    """:func:`canonicalize_bootstrap_address` through Ray's public API (the fallback)."""
    if address is None or address == "auto":
        address = os.environ.get("RAY_ADDRESS") or address
        if address == "auto":
            raise ConnectionError("this Ray is not one nasplay finds 'auto' clusters with; give "
                                  "the head node's HOST:PORT, or set RAY_ADDRESS")
    if address is None or address == "local":
        return None
    host, colon, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif not colon or ":" in host:
        raise ValueError(f"Invalid address format: {address}")
    if not host:
        raise ValueError(f"Malformed host: {host}")
    if host in LOCALHOST:
        from ray.util import get_node_ip_address

        host = get_node_ip_address()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def has_unresolved_values(config: dict) -> bool:
    """Whether ``config`` (nested dicts, lists, tuples) holds a search distribution, a
    ``{"grid_search": [...]}`` or an ``{"eval": ...}`` for Tune to resolve."""
    from nasplay.runtime._internals import tested_ray

    if tested_ray():
        from ray.tune.search.variant_generator import _has_unresolved_values

        return _has_unresolved_values(config)
    return public_has_unresolved_values(config)


def public_has_unresolved_values(config: dict) -> bool:
    """:func:`has_unresolved_values` through Ray's public API (the fallback)."""
    from ray.tune.search.sample import Domain

    def unresolved(value) -> bool:
        if isinstance(value, Domain):
            return True
        if isinstance(value, dict):
            if len(value) == 1 and ("grid_search" in value or "eval" in value):
                return True
            return any(unresolved(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return any(unresolved(v) for v in value)
        return False

    return any(unresolved(v) for v in config.values())
