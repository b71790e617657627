"""Parameter counts of the published cells at the papers' CIFAR-10 sizes, next to the papers' own.

No training: each network is built at 32x32 and counted. The counts are trainable parameters
without the auxiliary head, as the papers and DARTS's ``count_parameters_in_MB`` report them.
Run: ``python -m benchmarks.param_counts`` (about a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> (cells_per_stage N, filters F, the paper's parameter count, where it is stated)
PAPER_SIZES = {
    "nasnet-a": (6, 32, 3.3e6, "Zoph et al. 2018, Table 1: NASNet-A (6 @ 768)"),
    "amoebanet-a": (6, 36, 3.2e6, "Real et al. 2019, Table 2: AmoebaNet-A (N=6, F=36)"),
    "enas": (5, 36, 4.6e6, "Pham et al. 2018, Table 2: ENAS micro (15 normal cells, 36 filters)"),
    "darts-v2": (6, 36, 3.3e6, "Liu et al. 2019, Table 1: DARTS 2nd order (20 cells, C=36)"),
}


def trainable_count(model) -> int:
    return sum(int(v.numpy().size) for v in model.trainable_weights)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny run for the tests: each cell at N=1, F=8, not the papers'")
    args = parser.parse_args(argv)
    import keras  # imported here: importing the module runs nothing heavy

    from cells import build_network
    from search_space.published import PUBLISHED

    print(f"| cell | N | F | params (ours) | paper | ours / paper | build s |")
    print(f"| --- | --- | --- | --- | --- | --- | --- |")
    for name, (n, f, paper, _) in PAPER_SIZES.items():
        if args.smoke:
            n, f = 1, 8
        start = time.perf_counter()
        model = build_network(PUBLISHED[name], num_classes=10, filters=f, cells_per_stage=n,
                              input_shape=(32, 32, 3))
        count = trainable_count(model)
        seconds = time.perf_counter() - start
        print(f"| {name} | {n} | {f} | {count / 1e6:.2f}M | {paper / 1e6:.1f}M | "
              f"{count / paper:.2f} | {seconds:.0f} |")
        keras.backend.clear_session()
    print()
    for name, (*_, source) in PAPER_SIZES.items():
        print(f"- {name}: {source}")


if __name__ == "__main__":
    main()
