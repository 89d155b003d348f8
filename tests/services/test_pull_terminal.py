"""`hearth pull`'s progress: a bar in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from hearth.services.pull import Progress
from hearth.services.pull.terminal import TerminalProgress

DIGEST = "sha256:" + "ab" * 32
STEPS = [
    Progress("pulling manifest"),
    *(Progress("pulling abababababab", DIGEST, 50_000_000, n * 5_000_000) for n in range(11)),
    Progress("verifying sha256 digest", DIGEST, 50_000_000, 50_000_000),
    Progress("writing manifest"),
    Progress("success"),
]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_bar_redrawn_in_place() -> None:
    out = Tty()
    show = TerminalProgress(out)
    for step in STEPS:
        show(step)
    lines = out.getvalue().split("\n")
    assert lines[0] == "pulling manifest"
    bar = lines[1].split("\r")[-1]  # the last drawing of the bar's line
    assert "100%" in bar and "50.0 MB/50.0 MB" in bar and "MB/s" in bar and "ETA" in bar
    assert lines[2:] == ["verifying sha256 digest", "writing manifest", "success", ""]


def test_a_log_gets_plain_lines() -> None:
    out = io.StringIO()
    show = TerminalProgress(out)
    for step in STEPS:
        show(step)
    text = out.getvalue()
    assert "\r" not in text and "█" not in text
    assert "pulling abababababab: 25.0 MB of 50.0 MB" in text
    assert text.count("pulling abababababab:") == 11  # one a tenth
    assert text.endswith("writing manifest\nsuccess\n")
