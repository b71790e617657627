"""What is read out of finished runs: the leaderboards and summaries of ``nasplay inspect``
(``inspect``), cell diagrams (``diagrams``, ``layout``), progress plots (``plots``) and the
exported network of ``nasplay export`` (``export``)."""
