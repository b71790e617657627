"""Run in a child process by tests/test_oneshot_torch.py with KERAS_BACKEND=torch (the pytest
process has imported Keras with TensorFlow, and Keras cannot switch).

    KERAS_BACKEND=torch python tests/oneshot_torch_child.py IMAGE_FOLDER OUT_DIR

On the tiny space of tests/test_oneshot.py: the PyTorch engine's masked SGD against Keras's SGD
arithmetic, which weights a step moves, an uninterrupted training against one stopped after its
first epoch and resumed, scores against the extracted networks'. Writes what the test checks to
OUT_DIR/result.json and leaves the trained supernet in OUT_DIR/supernet (the test scores it on
TensorFlow).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from search_space import SearchSpace, register_space  # noqa: E402

TINY = register_space(SearchSpace("tiny_oneshot", ops=("identity", "conv_3x3"), num_blocks=2))
SCORED = (0, 1, 2)  # seeds of the genotypes whose scores the parent compares


def tiny_config(folder: str):
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    return OneShotConfig(data=folder, train_size=48, val_size=32, epochs=2, batch_size=8,
                         filters=4, cells_per_stage=0, recalibration_batches=2, cpus=2)


def masked_sgd_error() -> dict:
    """tests/test_oneshot.py's Keras-SGD reference, on the PyTorch engine: the gradients are
    left on the parameters, as a backward pass leaves them."""
    import keras
    import torch

    from nasplay.scorers.oneshot.engine_torch import MaskedSGD

    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
    used, unused, rows = (keras.Variable(a) for a in start)
    optimizer = MaskedSGD([used, unused, rows], momentum=0.9, weight_decay=0.1)
    row_mask = torch.tensor([[1.0], [0.0], [1.0]])
    reference = [a.copy() for a in start]
    buffers = [np.zeros_like(a) for a in start]
    error = 0.0
    for lr in (0.5, 0.3, 0.1):
        grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
        grads[2][1] = 0.0
        used.value.grad = torch.tensor(grads[0])
        rows.value.grad = torch.tensor(grads[2])  # `unused` got none: its op did not run
        optimizer.learning_rate.assign(lr)
        optimizer.apply([(None, [(used, None)]), (torch.tensor(False), [(unused, None)]),
                         (torch.tensor(True), [(rows, row_mask)])])
        for k in (0, 2):
            keep = slice(None) if k == 0 else [0, 2]
            reference[k][keep] -= lr * 0.1 * reference[k][keep]
            buffers[k][keep] = 0.9 * buffers[k][keep] - lr * grads[k][keep]
            reference[k][keep] += 0.9 * buffers[k][keep] - lr * grads[k][keep]
        error = max(error, *(float(np.max(np.abs(np.asarray(v) - reference[k])))
                             for k, v in enumerate((used, unused, rows))))
    return {"sgd_max_error": error,
            "sgd_unused_kept": bool(np.array_equal(np.asarray(unused), start[1])),
            "sgd_row_kept": bool(np.array_equal(np.asarray(rows)[1], start[2][1])),
            "sgd_grads_cleared": used.value.grad is None and rows.value.grad is None}


def moved_weights() -> dict:
    """After a step on a path, which variables and momentum buffers changed."""
    import keras

    from cells.supernet import SuperNet
    from cells.supernet_paths import _pairs
    from nasplay.scorers.oneshot.engine_torch import MaskedSGD, compile_steps

    keras.utils.set_random_seed(0)
    supernet = SuperNet(TINY, num_classes=4, filters=4, cells_per_stage=0, input_shape=(8, 8, 3))
    optimizer = MaskedSGD(supernet.trainable_variables, 0.9, 3e-4)
    optimizer.learning_rate.assign(0.1)
    train_step, _ = compile_steps(supernet, optimizer)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 4, 8).astype("int32")
    for _ in range(2):
        train_step(x, y, supernet.encode(TINY.sample(rng)))
    g = TINY.sample(rng)
    before = [np.asarray(v) for v in supernet.trainable_variables]
    slots = optimizer.slot_arrays()
    train_step(x, y, supernet.encode(g))
    path = {id(v) for layer, _, _ in _pairs(supernet, g) for v in layer.trainable_variables}
    variables = supernet.trainable_variables
    moved = {id(v) for v, old in zip(variables, before) if not np.array_equal(np.asarray(v), old)}
    slots_moved = {id(v) for v, new, old in zip(variables, optimizer.slot_arrays(), slots)
                   if not np.array_equal(new, old)}
    return {"moved": len(moved), "moved_off_path": len(moved - path),
            "slots_moved_off_path": len(slots_moved - path)}


def train_and_resume(folder: str, out: Path) -> dict:
    """An uninterrupted training, and one stopped (as a kill would) after its first epoch's
    checkpoint, then resumed: their weights."""
    from nasplay.scorers.oneshot import train as oneshot_train
    from nasplay.scorers.oneshot.supernet import train_supernet

    config = tiny_config(folder)
    whole = train_supernet(TINY.name, config, out / "supernet", verbose=0)
    epoch = oneshot_train._Steps.epoch

    def stop_in_the_second_epoch(self, e):
        if e == 1:
            raise KeyboardInterrupt
        return epoch(self, e)

    oneshot_train._Steps.epoch = stop_in_the_second_epoch
    try:
        train_supernet(TINY.name, config, out / "interrupted", verbose=0)
    except KeyboardInterrupt:
        pass
    finally:
        oneshot_train._Steps.epoch = epoch
    resumed = train_supernet(TINY.name, config, out / "interrupted", verbose=0)
    same = all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights()))
    meta = json.loads((out / "supernet" / "supernet.json").read_text())
    enas = config.replace(sampler="controller", epochs=1)  # rewards from the eager reward step
    train_supernet(TINY.name, enas, out / "controller", verbose=0)
    controller = json.loads((out / "controller" / "supernet.json").read_text())
    return {"resumed_equals_whole": same, "history": meta["history"],
            "controller_history": controller["history"]}


def scores(folder: str, out: Path) -> dict:
    """Scores of the trained supernet (pure and fine-tuned), against its extracted networks."""
    import keras

    from nasplay.scorers.oneshot.supernet import OneShotScorer, load_supernet

    config = tiny_config(folder)
    supernet = load_supernet(out / "supernet")
    scorer = OneShotScorer(supernet, config)
    result = {"scores": [], "extract_max_diff": 0.0}
    for seed in SCORED:
        g = TINY.sample(np.random.default_rng(seed))
        metrics = scorer.score(g)
        probs = np.asarray(supernet.extract(g).predict(scorer.x_val, verbose=0))
        path = scorer._predict(scorer.x_val, supernet.encode(g))
        result["extract_max_diff"] = max(result["extract_max_diff"],
                                         float(np.max(np.abs(probs - path))))
        result["scores"].append({k: metrics[k] for k in ("oneshot_accuracy", "oneshot_loss")})
    again = scorer.score(TINY.sample(np.random.default_rng(SCORED[0])))
    result["repeatable"] = again["oneshot_accuracy"] == result["scores"][0]["oneshot_accuracy"]
    before = [np.asarray(v) for v in supernet.trainable_variables]
    finetuned = OneShotScorer(supernet, config.replace(finetune_steps=2))
    result["finetuned"] = finetuned.score(TINY.sample(np.random.default_rng(0)))["oneshot_loss"]
    result["restored"] = all(np.array_equal(a, np.asarray(b))
                             for a, b in zip(before, supernet.trainable_variables))
    result["backend"] = keras.backend.backend()
    return result


def controller_updates() -> dict:
    """The RL controller's policy (a Keras model) updated on PyTorch: enough results for two
    policy-gradient updates."""
    from searchers import Controller

    controller = Controller(TINY, seed=0)
    for i in range(2 * controller.batch_size):
        proposal = controller.ask()
        controller.tell(proposal.trial_id, float(i % 3))
    return {"controller_updates": controller.num_updates}


def main(folder: str, out: Path) -> None:
    result = {**masked_sgd_error(), **moved_weights(), **controller_updates(),
              **train_and_resume(folder, out), **scores(folder, out)}
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
