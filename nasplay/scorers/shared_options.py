"""The options several scorers take under one flag: the candidate network's size (every scorer
that builds it) and the training images (the scorers that train). Declared once here, so that
``--filters`` means the same for each and no scorer package imports another's."""

from __future__ import annotations

from nasplay.scorers.registry import Option

FILTERS = Option("filters", "width of the candidate network's first stage", metavar="F",
                 minimum=1)
CELLS_PER_STAGE = Option("cells_per_stage", "normal cells between reductions", minimum=0)
SUBSET = Option("subset", "training images per candidate", field="train_size", minimum=1)
