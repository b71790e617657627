"""The zero-cost scorer (``--scorer zero-cost``): the NASWOT score (``naswot``) of the untrained
candidate; ``scorer`` registers it."""

from nasplay.scorers.zero_cost.scorer import SCORER

__all__ = ["SCORER"]
