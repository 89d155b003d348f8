"""`hearth serve | models | pull | chat | db upgrade | keys`: the command line. Flags come
from the Settings fields, so each option is declared once (core/config.py) and is also an
env var and a TOML key."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

from hearth import __version__
from hearth.core.config import ConfigError, ModelSpec, Settings, load_settings
from hearth.core.errors import HearthError
from hearth.core.ids import unix_now
from hearth.core.logtext import quote_prompts

if TYPE_CHECKING:
    import uvicorn

    from hearth.api.drain import Drain
    from hearth.store import Store
    from hearth.store.models import ApiKey

T = TypeVar("T")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("options (also HEARTH_<NAME> env vars and hearth.toml keys)")
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "flag" in extra and extra["flag"] is None:
            continue  # set in hearth.toml only (tables have no flag form)
        flag = str(extra.get("flag", "--" + name.replace("_", "-")))
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": field.description}
        annotation = field.annotation
        origin = get_origin(annotation)
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (list, dict):
            kwargs["action"] = "append"
            kwargs["metavar"] = extra.get("metavar", "VALUE")
        elif origin is Literal:
            kwargs["choices"] = list(get_args(annotation))
        else:
            kwargs["metavar"] = name.upper()
        group.add_argument(flag, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="A self-hosted LLM server.")
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = [
        (sub, "serve", "serve the configured models over HTTP"),
        (sub, "models", "list the configured models"),
        (sub, "pull", "download a GGUF model from Hugging Face into the models folder"),
    ]
    db = sub.add_parser("db", help="manage the database", description="manage the database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    commands.append((db_sub, "upgrade", "apply the database migrations not applied yet"))
    keys = sub.add_parser("keys", help="manage API keys", description="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    commands.append((keys_sub, "create", "create an API key and print it, once"))
    commands.append((keys_sub, "list", "list the API keys (never the keys themselves)"))
    commands.append((keys_sub, "revoke", "revoke an API key, by its name or prefix"))
    commands.append((keys_sub, "usage", "tokens used, by UTC day, key and model"))
    parsers = {}
    for group, command, help_text in commands:
        cmd = group.add_parser(command, help=help_text, description=help_text)
        cmd.add_argument(
            "--config", metavar="PATH", help="TOML config file (default: ./hearth.toml if present)"
        )
        _add_setting_flags(cmd)
        parsers[command] = cmd
    parsers["pull"].add_argument(
        "reference", metavar="[hf.co/]USER/REPO[:QUANT]", help="the repo; QUANT: Q4_K_M if left out"
    )
    parsers["pull"].add_argument("--name", help="serve it under this name (default: repo:quant)")
    _add_key_flags(parsers["create"])
    _add_chat(sub)
    parsers["models"].add_argument(
        "--url", help="a running server's models as they stand: loaded, loading, in use, until when"
    )
    parsers["revoke"].add_argument("key", metavar="NAME|PREFIX", help="the key's name or prefix")
    parsers["usage"].add_argument(
        "--key", dest="usage_key", metavar="NAME|PREFIX", help="only this key (name or prefix)"
    )
    parsers["usage"].add_argument(
        "--since", metavar="DATE", help="from this UTC day on: 2026-12-01"
    )
    return parser


def _add_chat(sub: Any) -> None:
    text = "chat in the terminal with a running Hearth (or the engine in this process)"
    chat = sub.add_parser("chat", help=text, description=text)
    chat.add_argument("model", nargs="?", help="the model (default: the first one served)")
    chat.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)"
    )
    chat.add_argument(
        "--api-key", dest="chat_key", metavar="KEY", help="its API key (default: $HEARTH_API_KEY)"
    )
    chat.add_argument(
        "--config", metavar="PATH", help="for the engine started here when none answers"
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _add_key_flags(cmd: argparse.ArgumentParser) -> None:
    group = cmd.add_argument_group("the key (limits are recorded; their enforcement is to come)")
    group.add_argument("--name", required=True, help="a unique name for the key")
    group.add_argument("--rpm", type=_positive, help="requests per minute")
    group.add_argument("--tpm", type=_positive, help="tokens per minute")
    group.add_argument("--max-concurrent", type=_positive, help="requests at once")
    group.add_argument(
        "--models", dest="key_models", metavar="A,B", help="the models it may use (default: all)"
    )
    group.add_argument("--budget-tokens", type=_positive, help="tokens per budget period")
    group.add_argument("--budget-period", choices=["day", "week", "month"])
    group.add_argument(
        "--expires", metavar="DATE", help="refused from then: 2027-01-31 (00:00 UTC) or ISO time"
    )
    group.add_argument("--admin", action="store_true", help="an admin key")


class UsageError(Exception):
    """Reported as one line on stderr with exit code 2."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
    try:
        return load_settings(overrides, args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _checked_models(settings: Settings) -> dict[str, ModelSpec]:
    from hearth.engine.llama_cpp.model import ModelFileError, check_gguf

    try:
        models = settings.served_models()
        for spec in models.values():
            if spec.path is not None:
                check_gguf(spec.path)
    except (ConfigError, ModelFileError) as exc:
        raise UsageError(str(exc)) from None
    return models


def _where(spec: ModelSpec) -> str:
    """Where a model is served from, for the terminal."""
    if spec.path is not None:
        return str(spec.path)
    return f"{spec.backend}: " + ", ".join(member.url for member in spec.urls)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is already in use") from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    except socket.gaierror as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quote_prompts(settings.log_prompts)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(settings: Settings) -> int:
    import uvicorn
    import uvloop

    from hearth.api.drain import AFTER_GRACE
    from hearth.app import create_app

    models = _checked_models(settings)
    # A database that cannot be reached stops Hearth before it loads.
    keyed = bool(settings.api_keys) or _on_store(settings, lambda store: store.api_keys.any())
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    configure_logging(settings)
    if not settings.is_loopback and not keyed:
        print(
            f"hearth: warning: listening on {settings.host} with no API key: anyone who can "
            "reach this port can use the models (pass --api-key, or run `hearth keys create`)",
            file=sys.stderr,
        )
    url = _url(settings.host, port)
    print(f"Hearth {__version__}", flush=True)
    for name, spec in models.items():
        print(f"  model     {name}  ({_where(spec)})", flush=True)
    print(f"  data dir  {settings.data_dir}", flush=True)
    print(f"  models    {settings.models_folder}  (each GGUF file there, on first use)", flush=True)
    print(f"  database  {_shown_url(settings.store_url)}", flush=True)
    print(f"  auth      {'API key required' if keyed else 'off'}", flush=True)
    print("  loading models…", flush=True)

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        lifespan="on",
        access_log=False,
        # A /v1/ws frame over the request limit closes with 1009 (the app checks it too,
        # for servers started without this; uvicorn's own default is 16 MiB).
        ws_max_size=settings.max_request_bytes,
        # What may still run after the drain (or after a third signal, which skips it).
        timeout_graceful_shutdown=AFTER_GRACE,
    )
    server = _draining_server(config, app.state.hearth.drain, settings.shutdown_grace)

    async def run() -> None:
        async def announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.05)
            print(f"Hearth is serving {', '.join(models)} on {url}", flush=True)
            print(f"  OpenAI API: {url}/v1   health: {url}/health", flush=True)
            print(f"  chat page:  {url}/   (in a browser)", flush=True)

        task = asyncio.create_task(announce())
        try:
            await server.serve(sockets=[sock])
        finally:
            task.cancel()

    # uvloop: the event loop's own work per streamed token (wakeups from the scheduler
    # thread, socket writes) runs on the cores llama.cpp decodes on.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())
    return 0 if server.started else 1


def _draining_server(config: uvicorn.Config, drain: Drain, grace: float) -> uvicorn.Server:
    """uvicorn's Server with Hearth's drain (api/drain.py, given `grace`) between the
    first stop signal and uvicorn's own shutdown; a second signal cuts the grace short,
    and a third, or one before the server is up, stops the way uvicorn does."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        _loop: asyncio.AbstractEventLoop | None = None
        _draining = False
        _cut_short = False
        _drain_task: asyncio.Task[None] | None = None  # held: the loop keeps weak refs

        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().serve(sockets=sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self._loop is None or not self.started or self._cut_short:
                super().handle_exit(sig, frame)
            # A signal handler runs between any two bytecodes: the loop does the work.
            elif self._draining:
                self._cut_short = True
                self._loop.call_soon_threadsafe(drain.cut_short)
            else:
                self._draining = True
                self._loop.call_soon_threadsafe(self._begin_drain)

        def _begin_drain(self) -> None:
            self._drain_task = asyncio.create_task(self._drain_then_exit())

        async def _drain_then_exit(self) -> None:
            try:
                await drain.run(grace)
            finally:
                self.should_exit = True

    return DrainingServer(config)


def list_models(settings: Settings) -> int:
    from hearth.engine.loader import models_folder
    from hearth.engine.registry import ModelRegistry

    folder = models_folder(settings, ModelRegistry())
    rows = [("NAME", "BACKEND", "SIZE", "QUANT", "CONTEXT", "WHERE")]
    listed = [(n, s.backend, _where(s)) for n, s in _checked_models(settings).items()]
    listed += [(n, "llama_cpp", str(folder.files(n)[0])) for n in folder.scan()]  # type: ignore[index]
    for name, backend, where in listed:
        about = folder.describe(name)
        size = f"{int(about['size']) / 1e6:.1f} MB" if "size" in about else "-"
        rows.append((
            name, backend, size, str(about.get("quantization", "-")),
            str(about.get("context_length", "-")), where,
        ))  # fmt: skip
    _print_table(rows)
    for name, spec in _checked_models(settings).items():
        if spec.backend == "upstream":
            print(f"\n{name}: pool members")
            _print_members(spec)
    return 0


def live_models(url: str) -> int:
    import httpx

    try:  # /health: open with keys on too, and it has every model's state
        models = httpx.get(url.rstrip("/") + "/health", timeout=10).json()["models"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"no Hearth answers at {url} ({exc})") from None
    rows = [("MODEL", "STATE", "IN USE", "UNLOADS (UTC)")]
    for m in models:
        loaded = m["state"] == "loaded"
        until = _when(m.get("expires_at"), "never" if loaded else "-")
        rows.append((m["id"], m["state"], str(m.get("in_use", 0)), until))
    _print_table(rows)
    return 0


def pull_model(settings: Settings, reference: str, name: str | None) -> int:
    from hearth.services.pull import pull
    from hearth.services.pull.terminal import TerminalProgress

    # Its retry notices would break the bar; what failed is said once, below.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        configured = settings.served_models()
    except ConfigError:
        configured = {}
    try:
        pulled = pull(
            reference,
            settings.models_folder,
            name=name,
            taken=configured.__contains__,
            report=TerminalProgress(sys.stdout),
        )
    except HearthError as exc:
        raise UsageError(exc.message) from None
    except KeyboardInterrupt:
        print("\nhearth: pull stopped; run it again to resume", file=sys.stderr)
        return 130
    print(f"pulled {pulled.repo} {pulled.quant} ({pulled.size / 1e6:.1f} MB) as {pulled.name}")
    print(f"  {pulled.path}")
    return 0


def _print_members(spec: ModelSpec) -> None:
    """A pool's members, each after one health check (as the server's would do it)."""
    from hearth.engine.upstream.pool import check_members

    for m in asyncio.run(check_members(spec.urls, spec.connect_timeout)):
        state = m.state if m.healthy else f"{m.state} ({m.last_error})"
        print(f"  {m.url}\tweight {m.weight:g}\t{state}")


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _migrate(settings: Settings) -> str | None:
    """Apply the migrations; the revision the database is at. One line if it cannot."""
    from hearth.store.migrate import current

    return _on_store(settings, lambda store: current(store.db.engine))


def db_upgrade(settings: Settings) -> int:
    revision = _migrate(settings)
    print(f"{_shown_url(settings.store_url)} is at revision {revision}")
    return 0


def _on_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """`work` on the migrated store; a database that cannot be reached is one line."""
    from hearth.store import Store

    async def run() -> T:
        store = Store(settings.store_url)
        try:
            await store.upgrade()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except HearthError as exc:
        raise UsageError(exc.message) from None
    except Exception as exc:  # a database that cannot be reached or written
        raise UsageError(f"database {_shown_url(settings.store_url)}: {exc}") from None


def keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from hearth.services import key_creation

    spec = key_creation.KeySpec(
        name=args.name,
        rpm=args.rpm,
        tpm=args.tpm,
        max_concurrent=args.max_concurrent,
        budget_tokens=args.budget_tokens,
        budget_period=args.budget_period,
        models=key_creation.models_list(args.key_models),
        expires=args.expires,
        admin=args.admin,
    )
    try:  # checked before the database is opened: a mistake creates nothing
        key, row = key_creation.build(spec, time.time())
    except HearthError as exc:
        raise UsageError(exc.message) from None
    _on_store(settings, lambda store: store.api_keys.add(row))
    print(key)
    print(
        f"hearth: created key {row.name!r} ({row.prefix}…); it is shown only this once",
        file=sys.stderr,
    )
    return 0


def _when(seconds: int | None, none: str = "-") -> str:
    if seconds is None:
        return none
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _limits(key: ApiKey) -> str:
    parts = [f"{n}={v}" for n, v in [("rpm", key.rpm), ("tpm", key.tpm)] if v is not None]
    if key.max_concurrent is not None:
        parts.append(f"concurrent={key.max_concurrent}")
    if key.budget_tokens is not None:
        parts.append(f"budget={key.budget_tokens}/{key.budget_period}")
    if key.models:
        parts.append("models=" + ",".join(key.models))
    if key.admin:
        parts.append("admin")
    return " ".join(parts) or "-"


def keys_list(settings: Settings) -> int:
    keys = _on_store(settings, lambda store: store.api_keys.all())
    rows = [("PREFIX", "NAME", "LIMITS", "CREATED", "LAST USED", "EXPIRES", "REVOKED")]
    for key in keys:
        rows.append((
            key.prefix, key.name, _limits(key), _when(key.created_at),
            _when(key.last_used_at, "never"), _when(key.expires_at, "never"), _when(key.revoked_at),
        ))  # fmt: skip
    _print_table(rows)
    return 0


def _print_table(rows: Sequence[Sequence[str]], right: int = 99) -> None:
    """Columns padded to their widest cell; those from index `right` on (numbers) are
    aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (
            cell.rjust(width) if i >= right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print("  ".join(cells).rstrip())


def keys_revoke(settings: Settings, name_or_prefix: str) -> int:
    now = unix_now()
    found = _on_store(settings, lambda store: store.api_keys.revoke(name_or_prefix, now))
    if found is None:
        raise UsageError(f"no key is named or prefixed {name_or_prefix!r}")
    key, revoked_now = found
    if not revoked_now:
        print(f"key {key.name!r} ({key.prefix}…) was already revoked at {_when(key.revoked_at)}")
    else:
        print(f"revoked key {key.name!r} ({key.prefix}…)")
    return 0


def keys_usage(settings: Settings, key: str | None, since_text: str | None) -> int:
    since = None
    if since_text is not None:
        try:
            since = date.fromisoformat(since_text)
        except ValueError:
            raise UsageError(f"--since {since_text!r} is not a date (2026-12-01)") from None
    totals = _on_store(settings, lambda store: store.usage.totals(key, since))
    rows = [("DAY", "KEY", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "CACHED")]
    for t in totals:
        rows.append((
            t.day.isoformat(), t.key, t.model, str(t.requests), str(t.prompt_tokens),
            str(t.completion_tokens), str(t.cached_tokens),
        ))  # fmt: skip
    _print_table(rows, right=3)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "chat":
            from hearth.repl.session import chat

            key = args.chat_key or os.environ.get("HEARTH_API_KEY")
            return chat(args.url, key, args.model, lambda: _settings(args))
        settings = _settings(args)
        if args.command == "serve":
            return serve(settings)
        if args.command == "pull":
            return pull_model(settings, args.reference, args.name)
        if args.command == "db":
            return db_upgrade(settings)
        if args.command == "keys":
            if args.keys_command == "create":
                return keys_create(settings, args)
            if args.keys_command == "revoke":
                return keys_revoke(settings, args.key)
            if args.keys_command == "usage":
                return keys_usage(settings, args.usage_key, args.since)
            return keys_list(settings)
        return live_models(args.url) if args.url else list_models(settings)
    except UsageError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
