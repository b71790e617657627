"""nasplay application layer: data, proxy training, Ray Tune search, run records, inspection.

Model code lives in ``cells`` (Keras only), search spaces in ``search_space`` (numpy only) and
searchers in ``searchers``; this package wires them to data, devices and Ray.
"""

__version__ = "0.1.0"
