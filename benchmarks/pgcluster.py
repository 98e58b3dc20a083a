"""Throwaway PostgreSQL servers for the scale-out tests and benchmarks: a primary made with ``initdb`` in a temporary
directory and streaming standbys made from it with ``pg_basebackup -R``, each on a free loopback
port, started and stopped by the test (a few seconds in all on this machine).

The servers run as the ``postgres`` user when the tests run as root (``initdb`` refuses root).
Durability is off (``fsync = off``): nothing here must survive the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg


def pg_bin() -> Path | None:
    """The directory of the server's programs (Debian keeps them out of PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    data: Path
    port: int
    running: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class Cluster:
    """A primary and its standbys, all in one temporary directory."""

    bin: Path
    root: Path
    servers: list[Server] = field(default_factory=list)

    @classmethod
    def create(cls, standbys: int = 1) -> Cluster:
        binary = pg_bin()
        if binary is None:
            raise RuntimeError("no initdb: the PostgreSQL server programs are not installed")
        root = Path(tempfile.mkdtemp(prefix="aiouow-pgcluster-"))
        cluster = cls(binary, root)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        try:
            cluster._init_primary()
            for i in range(standbys):
                cluster.add_standby(f"standby{i + 1}")
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _run(self, *args: str | Path) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    def _configure(self, server: Server) -> None:
        conf = server.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\nfsync = off\n"
                "full_page_writes = off\nwal_keep_size = '64MB'\n"
            )

    def _init_primary(self) -> None:
        primary = Server("primary", self.root / "primary", free_port())
        self._run(self.bin / "initdb", "-D", primary.data, "-A", "trust", "-U", "postgres")
        self._configure(primary)
        with (primary.data / "pg_hba.conf").open("a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        self.servers.append(primary)
        self.start(primary)

    @property
    def primary(self) -> Server:
        return self.servers[0]

    @property
    def standbys(self) -> list[Server]:
        return self.servers[1:]

    def add_standby(self, name: str) -> Server:
        standby = Server(name, self.root / name, free_port())
        source = self.primary
        self._run(self.bin / "pg_basebackup", "-h", "127.0.0.1", "-p", source.port, "-U", "postgres",
                  "-D", standby.data, "-R", "-X", "stream")  # fmt: skip
        self._configure(standby)
        self.servers.append(standby)
        self.start(standby)
        return standby

    def start(self, server: Server) -> None:
        log = self.root / f"{server.name}.log"
        self._run(self.bin / "pg_ctl", "-D", server.data, "-l", log, "-w", "-t", "60", "start")
        server.running = True

    def stop(self, server: Server, mode: str = "fast") -> None:
        if server.running:
            self._run(self.bin / "pg_ctl", "-D", server.data, "-m", mode, "-w", "stop")
            server.running = False

    def promote(self, server: Server) -> None:
        self._run(self.bin / "pg_ctl", "-D", server.data, "-w", "promote")

    def reload(self, server: Server) -> None:
        self._run(self.bin / "pg_ctl", "-D", server.data, "reload")

    async def wait_replayed(self, server: Server, within: float = 10.0) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        primary = await asyncpg.connect(self.primary.url)
        standby = await asyncpg.connect(server.url)
        try:
            target = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")
            deadline = time.monotonic() + within
            while not await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{server.name} did not replay {target} within {within} s")
                await asyncio.sleep(0.01)
        finally:
            await primary.close()
            await standby.close()

    def destroy(self) -> None:
        for server in reversed(self.servers):
            with contextlib.suppress(RuntimeError):  # (one that never started)
                self.stop(server, "immediate")
        shutil.rmtree(self.root, ignore_errors=True)
