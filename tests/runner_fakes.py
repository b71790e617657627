"""Fast stand-ins for the proxy in the runner's tests: ``--scorer runner_fakes:score``.

Ray runs trials in worker processes, so a monkeypatch in the test process cannot reach them; the
runner takes its scorer as an import path instead, and the tests put this folder on the workers'
``PYTHONPATH``. Behaviour is chosen per step (the order the searcher proposed a candidate) through
``scorer_options``; files under ``marker_dir`` make "once" behaviours happen once per test, and
an ``armed`` file there turns the Ctrl-C of ``interrupt_steps`` on.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def score(genotype, ctx) -> dict:
    options = ctx.options
    step = ctx.step
    value = int(genotype.hash()[:8], 16) / 0xFFFFFFFF  # deterministic, different per genotype
    if step in options.get("fail_steps", ()):
        raise ValueError(f"fake failure at step {step}")
    if step in options.get("die_steps", ()):
        os._exit(1)  # the worker process dies: Ray retries per FailureConfig, then gives up
    if step in options.get("die_once_steps", ()) and _first_time(options, f"die-{step}"):
        os._exit(1)
    armed = "marker_dir" in options and (Path(options["marker_dir"]) / "armed").exists()
    if step in options.get("interrupt_steps", ()) and armed:
        # Ctrl-C to the driver while this trial runs (the test wrote the driver's pid), which
        # then keeps running until Ray stops it
        pid_file = Path(options["marker_dir"]) / "driver_pid"
        for _ in range(200):  # the test writes it just after starting the driver
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGINT)
        time.sleep(options.get("hang_s", 30))
    peers = _barrier(options, ctx.trial_id)
    epochs = options.get("epochs") or 1
    for epoch in range(1, epochs):
        if ctx.report_epochs:
            ctx.report({ctx.metric: value * epoch / epochs, "epoch": epoch})
        time.sleep(options.get("epoch_s", 0))
    time.sleep(options.get("sleep_s", 0))
    import ray

    extra = {options["metric_name"]: 1.0 - value} if "metric_name" in options else {}
    return {**extra, "val_accuracy": value, "params": 1000 + step, "flops": 10_000, "train_seconds": 0.01,
            "epoch": epochs, "peers": peers, "gpu_ids": ",".join(map(str, ray.get_gpu_ids())),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
            "node_id": ray.get_runtime_context().get_node_id(), "worker_pid": os.getpid(),
            "tf_threads": os.environ.get("TF_NUM_INTRAOP_THREADS", "")}


def _first_time(options: dict, name: str) -> bool:
    marker = Path(options["marker_dir"]) / name
    if marker.exists():
        return False
    marker.touch()
    return True


def _barrier(options: dict, trial_id: str) -> int:
    """Wait until ``barrier_n`` trials have arrived (or ``barrier_s`` passed); how many did.

    Only trials that run at the same time can all arrive, so the count proves concurrency.
    """
    n = options.get("barrier_n")
    if not n:
        return 0
    folder = Path(options["marker_dir"])
    (folder / f"arrived-{trial_id}").touch()
    deadline = time.time() + options.get("barrier_s", 60)
    while time.time() < deadline:
        arrived = len(list(folder.glob("arrived-*")))
        if arrived >= n:
            return arrived
        time.sleep(0.05)
    return len(list(folder.glob("arrived-*")))
