"""The engine in this process, for `hearth chat` when no server answers: the app with the
configured models on a free loopback port, served from a background thread."""

from __future__ import annotations

import socket
import threading
import time

from hearth.core.config import Settings


class EmbeddedServer:
    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from hearth.app import create_app

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        app = create_app(settings)
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> EmbeddedServer:
        """Returns once the models are loaded and it answers; raises if it stopped."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the engine did not start (the lines above say why)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
