"""A run directory: its files (``rundir``), the trial records in it (``records``) and the lock
that keeps one search per directory (``runlock``)."""
