"""The search's progress on the terminal: one compact line instead of Ray's status table.

``[done/N] failed, running | best <metric> | elapsed, ETA``, plus a line per finished trial.
On a terminal the status line is redrawn in place between trial lines; when the output is a
file or a pipe nothing but whole lines is written (no carriage returns, no escape sequences).
``close`` ends the status line with a newline, so what is printed next starts a line of its own;
a phase after the search (``--rerank-top``'s re-scoring) gets a Progress of its own, labelled.
"""

from __future__ import annotations

import sys
import time

from nasplay.errors import first_line
from nasplay.runs.records import score_of


class Progress:
    """One compact line instead of Ray's status table: done/failed/running of N, the best
    score so far, elapsed time and ETA. A line per finished trial goes to stdout; on a terminal
    the status line is redrawn in place between them."""

    REDRAW_S = 1.0

    def __init__(self, target: int, metric: str, records: list[dict], stream=None,
                 label: str = ""):
        self.target = target
        self.label = label              # before the counts: "re-scoring [1/2] ..."
        self.metric = metric
        self.records = records
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.time()
        self.before = len(records)
        self.running = 0
        self._drawn = 0.0
        self._width = 0
        # kept up to date as records arrive (a line per trial must not re-read them all)
        self._counted = 0
        self._failed = 0
        self._best: float | None = None

    def _count(self, upto: int) -> None:
        """Fold the records up to ``upto`` not counted yet into the counts."""
        for record in self.records[self._counted:upto]:
            self._failed += record.get("status") == "failed"
            score = score_of(record, self.metric)
            if score is not None and (self._best is None or score > self._best):
                self._best = score
        self._counted = max(self._counted, upto)

    def status(self, done: int | None = None) -> str:
        """The status line after the first ``done`` records (default: all of them)."""
        done = len(self.records) if done is None else done
        self._count(done)
        failed = self._failed
        best_text = (f"best {self.metric} {self._best:.4f}" if self._best is not None
                     else f"best {self.metric} -")
        elapsed = time.time() - self.start
        finished = len(self.records)          # a batch's records are all in: the ETA's pace
        finished_here = finished - self.before
        eta = (_duration(elapsed / finished_here * (self.target - finished)) if finished_here
               else "?")
        return (f"{self.label + ' ' if self.label else ''}"
                f"[{done}/{self.target}] {failed} failed, {self.running} running | {best_text} | "
                f"elapsed {_duration(elapsed)}, ETA {eta}")

    def tick(self, running: int) -> None:
        self.running = running
        if self.tty and time.time() - self._drawn >= self.REDRAW_S:
            self._draw()

    def _draw(self) -> None:
        text = self.status()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
        self._drawn = time.time()

    def _clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def trial_done(self, record: dict, done: int | None = None, note: str = "") -> None:
        """A line for a finished trial; ``done``: the records up to it (a batch's records are
        all in before their lines are written); ``note`` follows its score."""
        self._clear()
        self.running = max(0, self.running - 1)
        if record["status"] == "failed":
            what = f"failed: {first_line(record.get('error', ''))[:160]}"
        else:
            score = score_of(record, self.metric)
            what = f"{self.metric} {score:.4f}" if score is not None else "completed"
            if record["metrics"].get("stopped_early"):
                what += " (stopped early)"
        what += note
        self.stream.write(f"{record['trial_id']} {what}  {self.status(done)}\n")
        self.stream.flush()
        if self.tty:
            self._draw()

    def close(self) -> None:
        """End the status line (on a terminal: its last state, then a newline), so the next
        message starts a line of its own instead of being glued onto it."""
        if self.tty and self._width:
            self.stream.write("\r" + self.status().ljust(self._width) + "\n")
            self._width = 0
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
