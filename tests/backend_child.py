"""Run in a child process by tests/test_backends.py, on the backend KERAS_BACKEND names (Keras
picks its backend at import, and the pytest process has imported Keras with TensorFlow).

    KERAS_BACKEND=jax python tests/backend_child.py DATA OUT_DIR

Trains one candidate twice with the same seed on a real CIFAR-10 subset, saves the second model
and loads it back, and writes what the test checks to OUT_DIR/result.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

TRAIN, VAL, EPOCHS = 1000, 500, 2


def main(data: str, out: Path) -> None:
    import keras

    import cells  # noqa: F401  (registers the cell layers for loading)
    from nasplay.scorers.proxy import training as proxy
    from search_space import get_space

    genotype = get_space("nasnet").sample(np.random.default_rng(0))
    config = proxy.ProxyConfig(data=data, train_size=TRAIN, val_size=VAL, epochs=EPOCHS,
                               filters=8, cells_per_stage=0, cpus=2)
    first_model, first = proxy.train(genotype, config)
    first_weights = [np.asarray(w) for w in first_model.get_weights()]
    model, again = proxy.train(genotype, config)
    same_weights = all(np.array_equal(a, np.asarray(b))
                       for a, b in zip(first_weights, model.get_weights()))
    model.save(out / "model.keras")
    loaded = keras.saving.load_model(out / "model.keras")
    x = proxy.subsets(config).x_val[:16]
    from nasplay.data.pipeline import normalize

    batch = normalize(x)
    diff = float(np.max(np.abs(keras.ops.convert_to_numpy(model(batch, training=False))
                               - keras.ops.convert_to_numpy(loaded(batch, training=False)))))
    timing = {k for k in first if k.endswith("_seconds")}
    result = {"backend": keras.backend.backend(), "first": first, "again": again,
              "same_metrics": {k: v for k, v in first.items() if k not in timing}
              == {k: v for k, v in again.items() if k not in timing},
              "same_weights": same_weights, "reload_max_abs_diff": diff}
    (out / "result.json").write_text(json.dumps(result, default=float))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
