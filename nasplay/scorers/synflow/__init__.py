"""The synflow scorer (``--scorer synflow``): the data-free synflow score (``measure``) of the
untrained, linearized candidate; ``scorer`` registers it."""

from nasplay.scorers.synflow.scorer import SCORER

__all__ = ["SCORER"]
