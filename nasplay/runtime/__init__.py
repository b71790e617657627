"""The runtime layer: backends, devices, quiet output and, in :mod:`._internals`, every private
third-party API nasplay uses (Keras, TensorFlow, PyTorch, Ray), each behind a version or
attribute check with a public-API fallback.

``_internals`` is the bottom of the project: it imports no other project module, and it is the
one place ``cells``, ``searchers`` and the application may reach a private name through
(tests/test_internals.py fails on a private access anywhere else). Beside it: the Keras backends
(``backends``), CPUs and GPUs (``devices``) and the frameworks' start-up logs kept quiet
(``quiet``).
"""
