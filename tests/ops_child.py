"""Run in a child process by tests/test_backends.py on the backend KERAS_BACKEND names: every
registered op (``cells.ops.OPS``) at stride 1 and 2, with the weights and input the parent
(TensorFlow) wrote, in inference and training mode.

    KERAS_BACKEND=torch python tests/ops_child.py CASES.npz OUT.npz

CASES.npz holds ``x`` and, per op and stride, ``{name}_{stride}_w{i}``; OUT.npz gets
``{name}_{stride}_{training}``, the op's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

FILTERS = 8


def outputs(cases) -> dict:
    import keras

    from cells.ops import OPS, make_op

    x = cases["x"]
    result = {}
    for name in sorted(OPS):
        for strides in (1, 2):
            layer = make_op(name, FILTERS, strides)
            layer.build(x.shape)
            prefix = f"{name}_{strides}_w"
            count = sum(k.startswith(prefix) for k in cases.files)
            layer.set_weights([cases[f"{prefix}{i}"] for i in range(count)])
            for training in (False, True):
                result[f"{name}_{strides}_{training}"] = keras.ops.convert_to_numpy(
                    layer(x, training=training))
    return result


if __name__ == "__main__":
    with np.load(sys.argv[1]) as cases:
        np.savez(sys.argv[2], **outputs(cases))
