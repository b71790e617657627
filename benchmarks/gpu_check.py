"""The GPU check: nasplay's proxy on one GPU through JAX, measured in one prepared run.

For a GPU machine that has JAX but neither TensorFlow nor Ray and no network (this project's
lent H200: Python 3.12, jax 0.11). Two steps:

    # 1. here (network, the shared CIFAR-10 copy): wheels and a data file into .whl/ (ignored)
    python -m benchmarks.gpu_check prepare
    # 2. there: carry .whl, install the wheels beside the machine's JAX, run (under 8 minutes)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; \\
        PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check run --out $OUT
    # anywhere, on the CPU: the same phases at tiny sizes (does it all work?)
    python -m benchmarks.gpu_check run --smoke
    # the packed data as a CIFAR-10 python-batches folder, for other benchmarks on that machine
    python3 -m benchmarks.gpu_check unpack /tmp     # -> /tmp/cifar-10-batches-py

``prepare`` downloads the wheels Keras needs there (keras, namex, optree for CPython 3.12; the
rest is in the machine's image) and packs 25,000 CIFAR-10 training JPEGs (2,500 per class, the
size of ``ProxyConfig.for_gpu()``'s subsets) with their labels into ``.whl/cifar10_subset.npz``
(about 23 MB; under 30 MB with the wheels). ``run`` decodes them into a CIFAR-10 python-batches
folder under /tmp and measures, each phase in child processes on ``KERAS_BACKEND=jax`` (so the
parent holds no GPU memory), results as they come in ``OUT/gpu_check.json``:

1. ``sequential``: random nasnet cells one after another in one process at
   ``ProxyConfig.for_gpu()`` (mixed precision: bfloat16 on this GPU): candidates per hour, and
   each candidate's compile (build + first step's overhead) against its steady step time;
2. ``shared``: two candidates at once on the one GPU, two processes (memory on demand):
   candidates per hour with two per GPU;
3. ``float32``: the first cell again without mixed precision;
4. ``oneshot``: a small supernet trained and scored on random amoebanet cells on
   ``KERAS_BACKEND=torch`` (one-shot search runs on TensorFlow or PyTorch, and the image has
   PyTorch): supernet steps per second, candidates per minute of one-shot scoring.

Phases run in that order while the time budget (``--budget-s``, default 420 s) lasts: a phase
expected to outlast it (from the first candidate's time) is skipped, and a child that runs past
it is stopped, keeping the candidates it finished. TensorFlow and Ray are blocked in the
children (``sys.modules``), so a run here proves they are not needed there.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, SHARED_CIFAR

WHEELS = REPO / ".whl"
DATA_FILE = WHEELS / "cifar10_subset.npz"
PER_CLASS = 2500
# what Keras needs that the GPU machine's image lacks (KINDS.md lists the image's packages)
WHEEL_PINS = ("namex", "optree")
SMOKE = dict(train_size=256, val_size=128, epochs=2, batch_size=64, filters=4, cells_per_stage=0,
             steps_per_execution=2, gpus=False)


# ------------------------------------------------------------------------------ prepare (here)


def prepare(args) -> int:
    from importlib.metadata import version

    WHEELS.mkdir(exist_ok=True)
    platforms = [arg for n in ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17",
                               "manylinux2014", "manylinux1") for arg in ("--platform", f"{n}_x86_64")]
    for package in (f"keras=={version('keras')}", *WHEEL_PINS):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.12", "--implementation",
                        "cp", *platforms, "-d", str(WHEELS), package], check=True)
    pack_subset(Path(args.source), DATA_FILE)
    total = sum(p.stat().st_size for p in WHEELS.iterdir()) / 2**20
    print(f"{WHEELS}: {total:.1f} MiB ({', '.join(sorted(p.name for p in WHEELS.iterdir()))})")
    return 0


def pack_subset(source: Path, out: Path, per_class: int = PER_CLASS) -> None:
    """The first ``per_class`` JPEGs of each class (sorted names), as bytes, in one .npz."""
    classes = sorted(p.name for p in (source / "train").iterdir() if p.is_dir())
    blobs, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((source / "train" / name).glob("*.jp*g"))[:per_class]:
            blobs.append(path.read_bytes())
            labels.append(label)
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(out, jpeg=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets,
             labels=np.array(labels, np.int64), classes=np.array(classes))
    print(f"{out}: {len(labels)} images, {out.stat().st_size / 2**20:.1f} MiB")


def unpack_subset(npz: Path, folder: Path) -> Path:
    """Decode the packed JPEGs (Pillow, threads) into a CIFAR-10 python-batches folder."""
    import io

    from PIL import Image

    packed = np.load(npz)
    jpeg, offsets = packed["jpeg"], packed["offsets"]

    def decode(i):
        with Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes())) as image:
            return np.asarray(image.convert("RGB"))

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        x = np.stack(list(pool.map(decode, range(len(offsets) - 1))))
    folder.mkdir(parents=True, exist_ok=True)
    batch = {b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
             b"labels": packed["labels"].tolist()}
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in packed["classes"].tolist()]}, f)
    return folder


# ------------------------------------------------------------------------------ children


def child(args) -> None:
    """One phase's worker: prints one ``RESULT {json}`` line per measurement."""
    sys.modules["tensorflow"] = None  # importing either now fails: the path needs neither
    sys.modules["ray"] = None
    if args.phase == "info":
        return info_child()
    if args.phase == "oneshot":
        return oneshot_child(args)
    from nasplay.scorers.proxy import training as proxy
    from search_space import get_space

    overrides = dict(SMOKE) if args.smoke else {}
    if args.float32:
        overrides["mixed_precision"] = False
    config = proxy.ProxyConfig.for_gpu(data=args.data, **overrides)
    proxy.subsets(config)
    rng = np.random.default_rng(0)
    cells = [get_space("nasnet").sample(rng) for _ in range(max(args.cells) + 1)]
    for i in args.cells:
        start = time.perf_counter()
        metrics = proxy.evaluate(cells[i], config)
        metrics.update(cell=i, candidate_seconds=time.perf_counter() - start,
                       steps_per_epoch=config.train_size // config.batch_size)
        _result(metrics)


def _result(record: dict) -> None:
    print("RESULT " + json.dumps(record, default=float), flush=True)


def info_child() -> None:
    from importlib.metadata import PackageNotFoundError, version

    import jax
    import keras

    versions = {}
    for package in ("keras", "jax", "jaxlib", "numpy", "tensorflow", "ray"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    device = jax.devices()[0]
    _result({"backend": keras.backend.backend(), "devices": [str(d) for d in jax.devices()],
             "device_kind": device.device_kind, "python": sys.version.split()[0],
             "compute_capability": getattr(device, "compute_capability", None),
             "versions": versions, "cpus": os.cpu_count()})


def oneshot_child(args) -> None:
    """Hook for the one-shot scorer: used only where ``nasplay.scorers.oneshot`` can be imported."""
    import importlib.util

    if importlib.util.find_spec("nasplay.scorers.oneshot") is None:
        return _result({"skipped": "nasplay.scorers.oneshot is not importable"})
    from nasplay.scorers.oneshot.supernet import OneShotConfig
    from nasplay.scorers.oneshot.score import cached_scorer
    from nasplay.scorers.oneshot.train import train_supernet
    from search_space import get_space

    sizes = dict(train_size=512, val_size=128, epochs=1) if args.smoke else \
        dict(train_size=10000, val_size=500, epochs=2)
    try:
        config = OneShotConfig(data=args.data, gpus=not args.smoke, **sizes)
        _result(_oneshot(config, train_supernet, cached_scorer, get_space,
                         4 if args.smoke else 30))
    except Exception as e:  # noqa: BLE001 - the hook reports what the one-shot code needs
        from nasplay.errors import first_line

        _result({"error": first_line(e)})


def _oneshot(config, train_supernet, cached_scorer, get_space, candidates: int) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        train_supernet("amoebanet", config, directory, verbose=0)
        trained = time.perf_counter() - start
        scorer = cached_scorer(directory, config, "amoebanet")
        rng = np.random.default_rng(0)
        genotypes = [get_space("amoebanet").sample(rng) for _ in range(candidates)]
        scorer.score(genotypes[0])  # compiles
        start = time.perf_counter()
        for genotype in genotypes[1:]:
            scorer.score(genotype)
        per = (time.perf_counter() - start) / (len(genotypes) - 1)
    import keras

    steps = config.epochs * (config.train_size // config.batch_size)
    return {"backend": keras.backend.backend(), "train_seconds": trained,
            "step_seconds": trained / steps, "score_seconds": per,
            "candidates_per_minute": 60 / per, "train_size": config.train_size,
            "epochs": config.epochs}


# ------------------------------------------------------------------------------ run (parent)

# phase, the child processes it runs at once (their arguments), and its expected length in
# units of the first sequential candidate (a phase that would not fit the budget is skipped)
PHASES = (("sequential", [dict(cells=(0, 1))], 0.0),
          ("shared", [dict(cells=(0,)), dict(cells=(1,))], 1.4),
          ("float32", [dict(cells=(0,), float32=True)], 1.1),
          ("oneshot", [dict()], 0.5))
MIN_PHASE_S = 30  # a phase is started only with at least this much of the budget left


class Phases:
    """Runs phases in child processes within the time budget; results into OUT/gpu_check.json."""

    def __init__(self, args, data: Path):
        self.args, self.data = args, data
        self.deadline = time.perf_counter() + args.budget_s
        self.out = Path(args.out) / "gpu_check.json"
        self.results: dict = {"settings": {k: v for k, v in vars(args).items()
                                           if isinstance(v, (int, float, str, bool))}}

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def start(self, phase: str, cells=(0,), float32: bool = False) -> subprocess.Popen:
        command = [sys.executable, "-m", "benchmarks.gpu_check", "child", "--phase", phase,
                   "--data", str(self.data),
                   "--cells", *map(str, cells), *(["--smoke"] * self.args.smoke),
                   *(["--float32"] * float32)]
        # the one-shot engines are TensorFlow's and PyTorch's; the image has PyTorch
        backend = "torch" if phase == "oneshot" else "jax"
        env = {**os.environ, "KERAS_BACKEND": backend, "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
               "TF_CPP_MIN_LOG_LEVEL": "3", **({"JAX_PLATFORMS": "cpu"} if self.args.smoke else {})}
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)

    def run_phase(self, name: str, specs: list[dict]) -> None:
        started = time.perf_counter()
        processes = [self.start(name, **spec) for spec in specs]
        rows = []
        for process in processes:
            try:
                out, _ = process.communicate(timeout=max(1.0, self.left()))
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
                self.results.setdefault("stopped", []).append(name)
            if process.returncode:
                self.results.setdefault("failed", []).append(f"{name} (exit {process.returncode})")
            rows += [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
        self.results[name] = {"wall_seconds": time.perf_counter() - started, "rows": rows}
        self.save()

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.results, indent=1, default=float) + "\n")


def run(args) -> int:
    if not DATA_FILE.is_file():
        print(f"no {DATA_FILE}: run `python -m benchmarks.gpu_check prepare` first")
        return 2
    with tempfile.TemporaryDirectory(prefix="nasplay_gpu_check_") as tmp:
        return _run_phases(args, Path(tmp))


def _run_phases(args, tmp: Path) -> int:
    started = time.perf_counter()
    data = unpack_subset(DATA_FILE, tmp / "cifar-10-batches-py")
    phases = Phases(args, data)
    phases.results["unpack_seconds"] = time.perf_counter() - started
    phases.run_phase("info", [{}])
    for name, specs, length in PHASES:
        first = (phases.results.get("sequential", {}).get("rows") or [{}])[0]
        expected = length * first.get("candidate_seconds", 0.0)
        if phases.left() < max(MIN_PHASE_S, expected):
            phases.results.setdefault("skipped", []).append(name)
            continue
        phases.run_phase(name, specs)
        print(f"{name}: done, {phases.left():.0f} s of the budget left", flush=True)
    phases.results["summary"] = summarize(phases.results)
    phases.save()
    print(json.dumps(phases.results["summary"], indent=1, default=float))
    return 0


def _candidate(row: dict) -> dict:
    """One candidate's split: compile (build + first call minus its steps) vs steady steps."""
    step = row["steady_epoch_seconds"] / row["steps_per_epoch"]
    compile_seconds = (row["build_seconds"] + row["first_step_seconds"]
                       - step * row["steps_per_execution"])
    return {"cell": row["cell"], "dtype_policy": row["dtype_policy"],
            "candidate_seconds": row["candidate_seconds"], "compile_seconds": compile_seconds,
            "compile_share": compile_seconds / row["candidate_seconds"],
            "step_ms": 1000 * step, "steady_epoch_seconds": row["steady_epoch_seconds"],
            "eval_seconds": row["eval_seconds"], "val_accuracy": row["val_accuracy"],
            "images_per_second": row["train_size"] / row["steady_epoch_seconds"]}


def summarize(results: dict) -> dict:
    summary = {}
    sequential = [_candidate(r) for r in results.get("sequential", {}).get("rows", [])]
    if sequential:
        summary["sequential"] = sequential
        mean = sum(c["candidate_seconds"] for c in sequential) / len(sequential)
        summary["candidates_per_hour"] = 3600 / mean
        summary["candidates_per_hour_warm_process"] = 3600 / sequential[-1]["candidate_seconds"]
    float32 = [_candidate(r) for r in results.get("float32", {}).get("rows", [])]
    if float32:
        summary["float32"] = float32
    shared = [_candidate(r) for r in results.get("shared", {}).get("rows", [])]
    if len(shared) == 2:
        summary["shared"] = shared
        summary["candidates_per_hour_two_per_gpu"] = \
            2 * 3600 / max(c["candidate_seconds"] for c in shared)
    oneshot = results.get("oneshot", {}).get("rows", [])
    if oneshot:
        summary["oneshot"] = oneshot[0]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("prepare", help="wheels and the data file into .whl/ (here)")
    make.add_argument("--source", default=str(SHARED_CIFAR), help="a CIFAR-10 JPEG folder")
    go = sub.add_parser("run", help="the measurements (on the GPU machine, or --smoke)")
    go.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "benchmarks" / "results"))
    go.add_argument("--budget-s", type=float, default=420.0)
    go.add_argument("--smoke", action="store_true", help=f"CPU, tiny settings: {SMOKE}")
    unpack = sub.add_parser("unpack", help="the packed data into FOLDER/cifar-10-batches-py "
                                            "(for other benchmarks there)")
    unpack.add_argument("folder")
    worker = sub.add_parser("child")
    worker.add_argument("--phase", required=True)
    worker.add_argument("--data", required=True)
    worker.add_argument("--cells", type=int, nargs="+", default=[0])
    worker.add_argument("--smoke", action="store_true")
    worker.add_argument("--float32", action="store_true")
    args = parser.parse_args()
    if args.command == "child":
        child(args)
        return 0
    if args.command == "unpack":
        print(unpack_subset(DATA_FILE, Path(args.folder) / "cifar-10-batches-py"))
        return 0
    return prepare(args) if args.command == "prepare" else run(args)


if __name__ == "__main__":
    sys.exit(main())
