"""The search engine, in the order a search runs: ``config`` (``SearchConfig``), ``plan`` (every
check before anything is written), ``api`` (``nasplay.search``), ``driver`` (searcher state and
records), ``tune_backend`` (Ray Tune), ``trial`` (what a Ray worker runs) and ``progress``."""
