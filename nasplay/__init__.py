"""nasplay's application layer: data, proxy training, Ray Tune search, run records, inspection.

Model code lives in ``cells`` (Keras only), search spaces in ``search_space`` (numpy only) and
searchers in ``searchers``; this package wires them to data, devices and Ray. The search as a
Python call::

    from nasplay import SearchConfig, search
    result = search(SearchConfig(searcher="evolution", space="amoebanet", trials=50,
                                 run_dir="runs/evo"))

``docs/architecture.md`` shows how the modules fit together.
"""

__version__ = "0.1.0"

# name -> module; imported on first use, so ``import nasplay`` stays light (no Ray, no Keras)
_PUBLIC = {"search": "nasplay.engine.api", "main": "nasplay.engine.api",
           "SearchResult": "nasplay.engine.driver", "SearchConfig": "nasplay.engine.config"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'nasplay' has no attribute {name!r}")
