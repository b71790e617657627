"""Does a supernet rank better as it trains? The fidelity cells scored at each epoch's checkpoint.

A supernet's training overwrites its checkpoint every epoch; copies taken as they land (any
folder holding a ``supernet.json`` and ``supernet.npz``, partial runs included) are loaded here
and score the fidelity cells of ``oneshot_benchmark.py fidelity`` (their standalone references
must exist). One line per checkpoint: epochs done, the training loss of its last epoch, and the
Spearman and Kendall coefficients of the one-shot score (accuracy and negative cross-entropy)
against the long standalone run. Ranks at epoch e of an E-epoch run are not those of an e-epoch
run (the cosine schedule has not reached zero), but they show whether ranking follows training.

    # while a training runs: copy runs/S/supernet.* to snaps/eN after each epoch, then
    python -m benchmarks.oneshot_ranking_curve snaps/e3 snaps/e6 snaps/e9 --cpus 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks.common import RESULTS

from benchmarks.oneshot_benchmark import _fidelity_cells, _rank_stats  # noqa: E402


def scorer_config(meta: dict, cpus):
    """The ``OneShotConfig`` a checkpoint was trained with (data, subsets, width, seed)."""
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    fields = OneShotConfig.__dataclass_fields__
    return OneShotConfig(**{k: v for k, v in meta.items() if k in fields}, cpus=cpus)


def score_checkpoint(directory: Path, genotypes, cells, long, cpus) -> dict:
    from nasplay.scorers.oneshot.supernet import OneShotScorer, load_supernet
    from nasplay.scorers.oneshot.checkpoint import read_meta

    supernet = load_supernet(directory, allow_partial=True)
    meta = read_meta(directory)
    scorer = OneShotScorer(supernet, scorer_config(meta, cpus))
    started = time.perf_counter()
    scores = [scorer.evaluate(genotypes[i]) for i in cells]
    history = meta.get("history") or [{}]
    return {"checkpoint": str(directory), "seed": meta["seed"], "epochs": meta["epochs"],
            "epochs_done": meta["epochs_done"], "last_epoch": history[-1],
            "score_seconds": (time.perf_counter() - started) / len(cells),
            "accuracy": _rank_stats([s[0] for s in scores], long),
            "neg_loss": _rank_stats([-s[1] for s in scores], long),
            "scores": [list(map(float, s)) for s in scores]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="supernet folders")
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--candidates", type=int, default=48, help="fidelity cells to score")
    parser.add_argument("--cpus", type=int, default=None, help="TF threads")
    parser.add_argument("--out", type=Path, default=RESULTS / "oneshot_ranking_curve.jsonl",
                        help="results are appended here, one line per checkpoint")
    args = parser.parse_args(argv)

    genotypes, reference, cells = _fidelity_cells(RESULTS, args.space, args.candidates)
    long = [reference[i]["long"] for i in cells]
    print("| checkpoint | epochs done | last epoch's loss | Spearman vs long (accuracy) "
          "| (cross-entropy) | Kendall (accuracy) |")
    print("|---|---|---|---|---|---|")
    for directory in args.checkpoints:
        row = score_checkpoint(directory, genotypes, cells, long, args.cpus)
        with args.out.open("a") as out:
            out.write(json.dumps(row) + "\n")
        loss = row["last_epoch"].get("loss", float("nan"))
        print(f"| {directory} | {row['epochs_done']}/{row['epochs']} | {loss:.3f} | "
              f"{row['accuracy']['spearman']:.3f} | {row['neg_loss']['spearman']:.3f} | "
              f"{row['accuracy']['kendall']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
