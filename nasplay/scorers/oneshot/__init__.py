"""The one-shot scorer (``--scorer oneshot``): a weight-sharing supernet trained once, then each
candidate scored with inherited weights. ``supernet`` holds ``OneShotConfig`` and the entry
points; ``train``, ``score`` and ``checkpoint`` the supernet's training, scoring and files;
``engine_tf`` and ``engine_torch`` the backends' training steps; ``scorer`` registers it."""

from nasplay.scorers.oneshot.scorer import SCORER

__all__ = ["SCORER"]
