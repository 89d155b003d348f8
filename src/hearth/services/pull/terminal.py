"""A pull's progress for `hearth pull`: a bar redrawn in place on a terminal (bytes,
speed, time left), plain lines elsewhere (a log, a CI job): one per step, and one per
tenth of a download."""

from __future__ import annotations

import time
from typing import TextIO

from hearth.services.pull.progress import Progress

_WIDTH = 30


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _downloading(p: Progress) -> bool:
    return p.status.startswith("pulling ") and p.total is not None and p.completed is not None


class TerminalProgress:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._status: str | None = None
        self._started = 0.0
        self._from = 0  # bytes already there when this download began (a resume)
        self._tenth = -1
        self._drawn = 0.0
        self._open = False  # a bar is drawn and its line not ended

    def __call__(self, p: Progress) -> None:
        if p.status != self._status:
            self._end_bar()
            self._status = p.status
            self._started, self._from, self._tenth = time.monotonic(), p.completed or 0, -1
            if not _downloading(p):
                print(p.status, file=self.out, flush=True)
        if not _downloading(p):
            return
        assert p.total is not None and p.completed is not None
        if self.tty:
            self._draw(p.status, p.completed, p.total)
        else:
            tenth = p.completed * 10 // max(p.total, 1)
            if tenth != self._tenth:
                self._tenth = tenth
                print(
                    f"{p.status}: {_mb(p.completed)} of {_mb(p.total)}", file=self.out, flush=True
                )

    def _draw(self, status: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._drawn < 0.1:
            return  # ten redraws a second are plenty
        self._drawn = now
        elapsed = max(now - self._started, 1e-6)
        speed = (done - self._from) / elapsed
        left = _clock((total - done) / speed) if speed > 0 else "-:--:--"
        filled = _WIDTH * done // max(total, 1)
        bar = "█" * filled + "░" * (_WIDTH - filled)
        line = (
            f"\r{status} {bar} {done * 100 // max(total, 1):3d}% "
            f"{_mb(done)}/{_mb(total)} {_mb(speed)}/s ETA {left}"
        )
        print(line, end="", file=self.out, flush=True)
        self._open = True

    def _end_bar(self) -> None:
        if self._open:
            print(file=self.out, flush=True)
            self._open = False
