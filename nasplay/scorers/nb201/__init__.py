"""NAS-Bench-201 on CIFAR-10: the table of all 15,625 ``nb201`` cells (``table``) and the scorer
that looks candidates up in it (``--scorer nb201``, ``scorer``)."""

from nasplay.scorers.nb201.scorer import SCORER, lookup

__all__ = ["SCORER", "lookup"]
