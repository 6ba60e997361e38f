"""A progress bar for long batches: live on a terminal, plain lines in a log.

On a terminal one line at the bottom is redrawn in place (counts, percent,
time spent, time left, what runs now), and the lines a batch prints go above
it. Where the output is not a terminal (CI logs, a file), nothing is redrawn:
the batch's own lines are printed as they come, and a plain status line
(``progress: 12/40 (30%), 1:02 spent, about 2:25 left``) every tenth of the
batch and at most a minute apart.

Used by ``grader autograde`` and by ``make book``'s chapter execution
(cnn_book.execute). The time left is the mean time per finished item times
the items left, so it improves as the batch goes on.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration."""
    seconds = int(round(max(seconds, 0)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts ``total`` items; ``advance()`` after each, ``log(line)`` to print one."""

    def __init__(
        self,
        total: int,
        what: str = "items",
        stream: TextIO | None = None,
        tty: bool | None = None,
        tick: float | None = 1.0,
        plain_every: float = 60.0,
    ):
        self.total = max(int(total), 0)
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = 0
        self.failed = 0
        self.current = ""  # what runs now, shown on the bar
        self.started = time.monotonic()
        self.plain_every = plain_every
        self._last_plain = self.started
        self._last_decile = 0
        self._lock = threading.RLock()
        self._closed = False
        self._ticker = None
        if self.tty:
            self._draw()
            if tick:  # the clock moves during a long item too
                self._ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True)
                self._ticker.start()

    # -- what the batch calls
    def log(self, line: str) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r\x1b[K" + line + "\n")
                self._draw()
            else:
                self.stream.write(line + "\n")
            self.stream.flush()

    def advance(self, n: int = 1, failed: bool = False, current: str | None = None) -> None:
        with self._lock:
            self.done += n
            self.failed += n if failed else 0
            if current is not None:
                self.current = current
            if self.tty:
                self._draw()
            else:
                self._maybe_plain()

    def set_current(self, current: str) -> None:
        with self._lock:
            self.current = current
            if self.tty:
                self._draw()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.tty:
                self.stream.write("\r\x1b[K")
            elif self.done and self._last_decile < 10:
                self.stream.write(self.status() + "\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what it shows
    def left(self) -> float | None:
        """Seconds left, from the mean time per finished item; None before the first."""
        if not self.done:
            return None
        per_item = (time.monotonic() - self.started) / self.done
        return per_item * max(self.total - self.done, 0)

    def status(self) -> str:
        spent = clock(time.monotonic() - self.started)
        left = self.left()
        pct = 100 * self.done // self.total if self.total else 100
        text = f"progress: {self.done}/{self.total} {self.what} ({pct}%), {spent} spent"
        if self.failed:
            text += f", {self.failed} failed"
        if left is not None and self.done < self.total:
            text += f", about {clock(left)} left"
        return text

    def bar(self, width: int) -> str:
        left = self.left()
        counts = f" {self.done}/{self.total} {self.what}"
        if self.failed:
            counts += f" ({self.failed} failed)"
        times = f" · {clock(time.monotonic() - self.started)}"
        if left is not None and self.done < self.total:
            times += f" · {clock(left)} left"
        now = f" · {self.current}" if self.current and self.done < self.total else ""
        cells = max(10, min(30, width - len(counts) - len(times) - len(now) - 2))
        filled = cells * self.done // self.total if self.total else cells
        text = "[" + "#" * filled + "-" * (cells - filled) + "]" + counts + times + now
        return text[: max(width - 1, 20)]

    # -- drawing
    def _draw(self) -> None:
        if self._closed:
            return
        width = shutil.get_terminal_size((80, 24)).columns
        self.stream.write("\r\x1b[K" + self.bar(width))
        self.stream.flush()

    def _maybe_plain(self) -> None:
        decile = 10 * self.done // self.total if self.total else 10
        now = time.monotonic()
        if decile > self._last_decile or now - self._last_plain >= self.plain_every:
            self._last_decile = max(decile, self._last_decile)
            self._last_plain = now
            self.stream.write(self.status() + "\n")
            self.stream.flush()

    def _tick(self, every: float) -> None:
        while True:
            time.sleep(every)
            with self._lock:
                if self._closed:
                    return
                self._draw()
