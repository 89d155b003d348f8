"""A throwaway PostgreSQL 15 server for the tests: initdb + pg_ctl in a temp dir, on a
free port, run as the `postgres` system user when the tests run as root (initdb refuses
root). `make test` installs Debian's postgresql-15 when it is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 is not installed ({PG_BIN}); run `make test`")
        self.root = Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as_user, *args], check=True, capture_output=True, text=True, cwd=self.root
        )

    def start(self) -> PostgresServer:
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "hearth", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.resume()
        return self

    def halt(self) -> None:
        """Stop the server as a crash would, keeping its data for `resume`."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def resume(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        self._run(
            str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
            "-U", "hearth", "-d", "postgres", "-c", f'CREATE DATABASE "{name}"',
        )  # fmt: skip
        return f"postgresql+asyncpg://hearth@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
