"""`hearth chat` driven through a pseudo-terminal against a real server: the reply
streams, /system, /clear, /model and multi-line messages take effect, Ctrl-C stops a
reply (and the generation on the server) but not the program, /bye and a second Ctrl-C
leave with 0; an unknown model is one line; with no server it starts the engine itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from hearth.engine.fake import FakeBackend
from hearth.engine.types import GenerationRequest
from tests.conftest import LiveServer, make_settings, registry_of

SRC = str(Path(__file__).parents[2] / "src")


def _echo(request: GenerationRequest) -> str:
    """What the model was sent, said back: the system message, user turns, last message."""
    messages = request.messages or ()
    system = next((m.content for m in messages if m.role == "system"), "-")
    turns = sum(m.role == "user" for m in messages)
    return f"system={system} turns={turns} last={messages[-1].content!r}"


SLOW = FakeBackend("slow", " ".join(f"word{i}" for i in range(2000)), token_delay=0.02)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    echo = FakeBackend("echo", _echo, context_length=4096)
    slow_backend = SLOW
    slow_backend.context_length = 1 << 16
    settings = make_settings(tmp_path_factory.mktemp("repl"))
    live = LiveServer(settings, registry_of(echo, slow_backend)).start()
    yield live
    live.stop()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    return {**env, "PYTHONPATH": SRC, **extra}


def _as_at_a_terminal() -> None:
    # A suite started in the background by a shell without job control (`cmd &` in a
    # script) ignores SIGINT, and an ignored signal stays ignored across exec: the chat
    # would never see Ctrl-C. A user's terminal delivers it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(*args: str, cwd: Path | None = None, **env: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "hearth", "chat", *args],
        env=_env(**env),
        cwd=str(cwd) if cwd else None,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
        preexec_fn=_as_at_a_terminal,
    )


def _say(child: pexpect.spawn, line: str, *expected: str) -> None:
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(">>> ")


def _leaves_with_zero(child: pexpect.spawn) -> None:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_conversation_with_its_commands(server: LiveServer) -> None:
    child = _spawn("--url", server.url, "echo")
    child.expect_exact("Chatting with echo.")
    child.expect_exact(">>> ")
    _say(child, "hello", "system=- turns=1 last='hello'")
    _say(child, "again", "system=- turns=2")  # the conversation is kept
    _say(child, "/system Be brief.", "Set the system message.")
    _say(child, "three", "system=Be brief. turns=3")
    _say(child, "/clear", "Cleared the conversation.")
    _say(child, "four", "system=Be brief. turns=1")
    child.sendline('"""first line')
    child.expect_exact("... ")
    _say(child, 'second line"""', "turns=2 last='first line\\nsecond line'")
    _say(child, "/model nope", "There is no model 'nope' here; there are: echo, slow.")
    _say(child, "/what", "Unknown command '/what'")
    child.sendline("/bye")
    _leaves_with_zero(child)


def test_ctrl_c_stops_the_reply_not_the_program(server: LiveServer) -> None:
    child = _spawn("--url", server.url, "slow")
    child.expect_exact(">>> ")
    child.sendline("go")
    child.expect_exact("word20 ")  # it is streaming
    child.sendintr()
    child.expect_exact("(stopped)")
    child.expect_exact(">>> ")
    deadline = time.monotonic() + 5
    while SLOW.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert SLOW.running == 0  # the server stopped generating too
    _say(child, "/model echo", "Talking to echo now.")
    _say(child, "hi", "turns=1")  # the stopped exchange was not kept
    child.sendintr()
    child.expect_exact("(Ctrl-C again, Ctrl-D or /bye to leave)")
    child.sendintr()
    _leaves_with_zero(child)


def test_ctrl_d_leaves(server: LiveServer) -> None:
    child = _spawn("--url", server.url)  # no model named: the first one served
    child.expect_exact("Chatting with echo.")
    child.expect_exact(">>> ")
    child.sendeof()
    _leaves_with_zero(child)


def test_an_unknown_model_is_one_clear_line(server: LiveServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hearth", "chat", "--url", server.url, "nope"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"hearth: error: {server.url} has no model 'nope'; it has: echo, slow\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_with_no_server_it_starts_the_engine_itself(tmp_path: Path, model_path: Path) -> None:
    """The configured models (hearth.toml here: the bundled model, its replies kept short)."""
    (tmp_path / "hearth.toml").write_text(
        f'[[models]]\nname = "tiny"\npath = "{model_path}"\nctx_size = 512\n'
        "options = {max_tokens = 8}\n"
    )
    url = f"http://127.0.0.1:{_free_port()}"
    child = _spawn("--url", url, cwd=tmp_path, HEARTH_DATA_DIR=str(tmp_path / "data"))
    child.timeout = 180  # loading, on a busy machine
    child.expect_exact(f"No Hearth server answers at {url}: starting the engine in this process.")
    child.expect_exact("Loading tiny")
    child.expect_exact("Ready in")
    child.expect_exact("Chatting with tiny.")
    child.expect_exact(">>> ")
    child.sendline("Name a colour.")
    child.expect_exact("Name a colour.")
    child.expect_exact(">>> ")
    assert child.before.strip(), "no reply was streamed"
    child.sendline("/bye")
    _leaves_with_zero(child)
