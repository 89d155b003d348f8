"""The chat loop, as `ollama run` has it: a message or a command per prompt, `\"\"\"` around
a message of several lines, the reply streamed as it comes; Ctrl-C stops a reply (or
drops a message being typed), and Ctrl-C twice at the prompt, Ctrl-D or /bye ends it."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

from hearth.core.config import Settings
from hearth.repl.client import ChatClient, ChatError
from hearth.repl.embedded import EmbeddedServer

with contextlib.suppress(ImportError):  # line editing and history where there is readline
    import readline  # noqa: F401

HELP = '''Available commands:
  /system TEXT   set the system message (the conversation is kept)
  /clear         forget the conversation (the system message stays)
  /model NAME    talk to another model from now on
  /bye           leave (also Ctrl-D, or Ctrl-C twice at the prompt)
  /?, /help      this help

Put """ before and after a message of several lines. Ctrl-C stops a reply.'''

QUOTES = '"""'


def _say(text: str = "") -> None:
    print(text, flush=True)


def read_message() -> str:
    """One message: a line, or the lines between two `\"\"\"`."""
    line = input(">>> ")
    if not line.lstrip().startswith(QUOTES):
        return line.strip()
    first = line.lstrip()[len(QUOTES) :]
    if first.rstrip().endswith(QUOTES):
        return first.rstrip()[: -len(QUOTES)].strip()
    lines = [first]
    while True:
        more = input("... ")
        if more.rstrip().endswith(QUOTES):
            lines.append(more.rstrip()[: -len(QUOTES)])
            return "\n".join(lines).strip()
        lines.append(more)


class Session:
    def __init__(self, client: ChatClient, model: str) -> None:
        self.client = client
        self.model = model
        self.system: str | None = None
        self.history: list[dict[str, str]] = []

    def loop(self) -> int:
        interrupted = False
        while True:
            try:
                text = read_message()
            except EOFError:
                _say()
                return 0
            except KeyboardInterrupt:
                if interrupted:
                    _say()
                    return 0
                interrupted = True
                _say("\n(Ctrl-C again, Ctrl-D or /bye to leave)")
                continue
            interrupted = False
            if text.startswith("/"):
                if not self.command(text):
                    return 0
            elif text:
                self.reply(text)

    def command(self, line: str) -> bool:
        """Run a /command; False to leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name == "/bye":
            return False
        if name in ("/?", "/help"):
            _say(HELP)
        elif name == "/system" and arg:
            self.system = arg
            _say("Set the system message.")
        elif name == "/clear":
            self.history.clear()
            _say("Cleared the conversation.")
        elif name == "/model" and arg:
            self.switch(arg)
        elif name in ("/system", "/model"):
            _say(f"Usage: {name} {'TEXT' if name == '/system' else 'NAME'}")
        else:
            _say(f"Unknown command {name!r}: /? lists them.")
        return True

    def switch(self, model: str) -> None:
        try:
            names = self.client.models()
        except ChatError as exc:
            _say(f"error: {exc}")
            return
        if model not in names:
            _say(f"There is no model {model!r} here; there are: {', '.join(names)}.")
            return
        self.model = model
        _say(f"Talking to {model} now.")

    def reply(self, text: str) -> None:
        """Stream the reply to `text`; one stopped or failed is not kept in the history
        (nor is its message), so the conversation stays whole."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        messages = [*system, *self.history, {"role": "user", "content": text}]
        parts: list[str] = []
        try:
            for piece in self.client.stream(self.model, messages):
                parts.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
        except KeyboardInterrupt:
            _say("\n(stopped)\n")
            return
        except ChatError as exc:
            _say(f"{chr(10) if parts else ''}error: {exc}\n")
            return
        _say("\n")
        self.history += [
            {"role": "user", "content": text},
            {"role": "assistant", "content": "".join(parts)},
        ]


def chat(url: str, api_key: str | None, model: str | None, settings: Callable[[], Settings]) -> int:
    """`hearth chat`: 0 when the user leaves, 1 with one line on stderr when the chat
    cannot start (no such model, a key needed, the engine failing to start)."""
    client = ChatClient(url, api_key)
    embedded = None
    try:
        if not client.answers():
            embedded = _embedded(url, settings())
            client.close()
            client = ChatClient(embedded.url, api_key or _static_key(settings()))
        names = client.models()
        if model is None and not names:
            raise ChatError(f"{client.url} serves no model")
        model = model or names[0]
        if model not in names:
            raise ChatError(f"{client.url} has no model {model!r}; it has: {', '.join(names)}")
        _say(f"Chatting with {model}. /? for help; /bye or Ctrl-D to leave.")
        return Session(client, model).loop()
    except ChatError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


def _embedded(url: str, settings: Settings) -> EmbeddedServer:
    _say(f"No Hearth server answers at {url}: starting the engine in this process.")
    _say(f"Loading {', '.join(settings.served_models())}…")
    started = time.monotonic()
    try:
        server = EmbeddedServer(settings).start()
    except RuntimeError as exc:
        raise ChatError(str(exc)) from None
    _say(f"Ready in {time.monotonic() - started:.1f}s (the engine stops when the chat ends).")
    return server


def _static_key(settings: Settings) -> str | None:
    """The operator's own key, for the engine started here with keys set."""
    return settings.api_keys[0] if settings.api_keys else None
