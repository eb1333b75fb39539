"""Keras-style progress lines, drawn with tqdm.

``verbose=1`` shows ``2/2 [==============================] - 0s 16ms/step - loss: 2.8327 - accuracy: 0.0000e+00
- grad_norm: 0.5442`` (the mean gradient norm before clipping so far this epoch, and ``clip_fraction``
when the optimizer clips): a live tqdm bar on a terminal, and only the finished line when output goes to a file or a CI
log (no carriage-return noise). ``verbose=2`` prints one short line per epoch.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Mapping

from tqdm import tqdm

BAR_FORMAT = "{n_fmt}/{total_fmt} [{bar:30}]{logs}"
BAR_CHARS = ".="  # empty, full: Keras' look
#: logged values that History keeps but the line leaves out, to stay short (the mean ``grad_norm`` is shown)
NOT_SHOWN = frozenset({"grad_norm_max", "nonfinite_steps"})


def format_logs(logs: Mapping[str, float]) -> str:
    """`` - loss: 2.8327 - accuracy: 0.0000e+00``, with Keras' switch to exponent form below 1e-3."""
    parts = []
    for key, value in logs.items():
        if key in NOT_SHOWN:
            continue
        value = float(value)
        parts.append(f" - {key}: {value:.4f}" if abs(value) > 1e-3 else f" - {key}: {value:.4e}")
    return "".join(parts)


def format_step_time(elapsed: float, steps: int) -> str:
    """`` - 0s 16ms/step``: whole-epoch seconds, then the time per step in a readable unit."""
    per_step = elapsed / max(steps, 1)
    if per_step >= 1 or per_step == 0:
        unit = f"{per_step:.0f}s/step"
    elif per_step >= 1e-3:
        unit = f"{per_step * 1e3:.0f}ms/step"
    else:
        unit = f"{per_step * 1e6:.0f}us/step"
    return f" - {elapsed:.0f}s {unit}"


class _KerasBar(tqdm):
    """tqdm with one extra field, ``{logs}``, holding the Keras-style tail of the line."""

    logs_text = ""

    @property
    def format_dict(self):
        d = super().format_dict
        d["logs"] = self.logs_text
        return d


class Progbar:
    """Progress over the ``total`` steps of one epoch (or one ``predict`` / ``evaluate`` pass)."""

    def __init__(self, total: int, verbose: int = 1, file: IO[str] | None = None):
        self.total = total
        self.verbose = verbose
        self.file = file if file is not None else sys.stdout
        self.start = time.perf_counter()
        self.seen = 0
        interactive = bool(getattr(self.file, "isatty", lambda: False)())
        self._bar = None
        if verbose == 1 and interactive:
            # the live bar is cut to the terminal's width so that it can redraw itself in place;
            # it is cleared at the end and the finished line printed whole (it may wrap)
            self._bar = _KerasBar(total=total, file=self.file, bar_format=BAR_FORMAT, ascii=BAR_CHARS,
                                  leave=False, mininterval=0.05, dynamic_ncols=False)

    def update(self, steps_done: int, logs: Mapping[str, float]) -> None:
        self.seen = steps_done
        if self._bar is not None:
            self._bar.logs_text = format_step_time(time.perf_counter() - self.start, steps_done) + format_logs(logs)
            self._bar.update(steps_done - self._bar.n)

    def close(self, logs: Mapping[str, float]) -> None:
        """Print the finished line with the final ``logs``."""
        elapsed = time.perf_counter() - self.start
        tail = format_step_time(elapsed, self.total) + format_logs(logs)
        if self.verbose == 1:
            if self._bar is not None:
                self._bar.close()
            line = tqdm.format_meter(self.total, self.total, elapsed, bar_format=BAR_FORMAT,
                                     ascii=BAR_CHARS, logs=tail)
            print(line, file=self.file, flush=True)
        elif self.verbose == 2:
            print(f"{self.total}/{self.total} - {elapsed:.0f}s{format_logs(logs)}", file=self.file, flush=True)
