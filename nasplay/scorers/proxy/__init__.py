"""The proxy scorer (``--scorer proxy``): ``training`` trains a candidate briefly and scores it
(``clock`` times the run, ``flops`` counts its multiply-adds); ``scorer`` registers it."""

from nasplay.scorers.proxy.scorer import SCORER

__all__ = ["SCORER"]
