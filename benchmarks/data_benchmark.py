"""Data loading: first load (decode + cache write), second load (cache), tf.data throughput.

- first load: ``load_source`` on an empty cache folder; TensorFlow is imported beforehand, so
  this is listing + decoding + writing the cache entry.
- second load: ``load_source`` again in a new Python process (as the next run would), timed
  inside it after its imports; once as returned (a memory map) and once including a read of
  every pixel. The page cache is warm: the entry was just written.
- pipeline: images/s drawn from ``make_dataset`` over the whole training split (one epoch of
  warm-up, then the fastest of ``--epochs`` timed epochs), iterating batches in Python as
  Keras's ``fit`` does.

    python -m benchmarks.data_benchmark                     # the shared CIFAR-10 copy
    python -m benchmarks.data_benchmark --data DIR --batch-size 256
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import REPO, SHARED_CIFAR, add_smoke

from nasplay.data import load_source, make_dataset  # noqa: E402

SECOND_LOAD = """
import sys, time
import numpy as np
from nasplay.data import load_source
t, c = time.perf_counter(), time.process_time()
ds = load_source(sys.argv[1], cache_dir=sys.argv[2])
print(time.perf_counter() - t, time.process_time() - c)
np.asarray(ds.x).sum(dtype=np.uint64)
print(time.perf_counter() - t, time.process_time() - c)
"""

PIPELINES = {  # name: make_dataset keyword arguments
    "evaluation (no shuffle)": dict(training=False),
    "training, no augmentation": dict(training=True),
    "training, crop + flip": dict(training=True, augment=True),
    "training, crop + flip + cutout 16": dict(training=True, augment=True, cutout=16),
}


def throughput(x, y, batch_size, epochs, **kwargs) -> tuple[float, float]:
    """Wall and CPU seconds per image in the fastest of ``epochs`` timed epochs.

    The fastest epoch is the one least disturbed by other load on the machine; CPU time (all
    threads of this process) is what the pipeline takes away from training on the same cores.
    """
    ds = make_dataset(x, y, batch_size, **kwargs)
    for _ in ds:  # warm-up epoch: tracing, thread pools
        pass
    best = (float("inf"), float("inf"))
    for _ in range(epochs):
        start, cpu, seen = time.perf_counter(), time.process_time(), 0
        for images, _labels in ds:
            seen += len(images)
        best = min(best, ((time.perf_counter() - start) / seen, (time.process_time() - cpu) / seen))
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    add_smoke(parser, epochs=1)  # give --data a small folder
    args = parser.parse_args(argv)

    import tensorflow as tf  # noqa: F401  (imported before timing the first load)

    rows = []  # (measure, wall, CPU)
    with tempfile.TemporaryDirectory(prefix="nasplay-data-bench-") as cache_dir:
        start, cpu = time.perf_counter(), time.process_time()
        ds = load_source(args.data, cache_dir=cache_dir)
        rows.append((f"first load: decode {len(ds)} images + write cache",
                     f"{time.perf_counter() - start:.2f} s", f"{time.process_time() - cpu:.2f} s"))
        out = subprocess.run([sys.executable, "-c", SECOND_LOAD, args.data, cache_dir],
                             capture_output=True, text=True, check=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        (mapped, mapped_cpu), (read, read_cpu) = (
            (float(v) for v in line.split()) for line in out.stdout.splitlines()[-2:])
        rows.append(("second load (new process): memory-mapped",
                     f"{mapped:.3f} s", f"{mapped_cpu:.3f} s"))
        rows.append(("second load (new process): + read every pixel",
                     f"{read:.3f} s", f"{read_cpu:.3f} s"))

    x, y = ds.subset(slice(None)).x, ds.y  # in memory, as a proxy's subset is
    for name, kwargs in PIPELINES.items():
        wall, cpu = throughput(x, y, args.batch_size, args.epochs, **kwargs)
        rows.append((f"pipeline, batch {args.batch_size}: {name}",
                     f"{1 / wall:,.0f} images/s", f"{cpu * 1e6:.1f} µs/image"))

    print(f"data: {args.data}   cpus: {os.cpu_count()}   "
          f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    header = ("measure", "wall", "CPU (all threads)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for i, row in enumerate([header, *rows]):
        print("| " + " | ".join(f"{v:<{w}}" for v, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
