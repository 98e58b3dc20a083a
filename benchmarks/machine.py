"""The machine and the software versions a run happened on, and the command that ran it."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True, slots=True)
class Environment:
    date: str
    cpu: str
    cores: int
    ram: str
    python: str
    versions: dict[str, str]  # package or database -> version
    load: str  # /proc/loadavg when the run started

    def lines(self) -> list[str]:
        """Markdown bullet lines."""
        soft = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        return [
            f"- Date: {self.date}",
            f"- Machine: {self.cpu}, {self.cores} cores, {self.ram} RAM ({platform.system()} {platform.release()})",
            f"- Software: Python {self.python}, {soft}",
            f"- Load average when the run started (other processes): {self.load}",
        ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _ram() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _load() -> str:
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def aiouow_revision() -> str:
    """The git commit of the aiouow being measured, marked when its files have uncommitted changes."""
    import aiouow

    where = os.path.dirname(os.path.abspath(aiouow.__file__))
    try:
        head = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"{head} with uncommitted changes" if dirty else head


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_environment(dialect: str, server_version: str) -> Environment:
    versions = {name: _version(name) for name in ("aiouow", "asyncpg", "aiosqlite", "SQLAlchemy")}
    versions["aiouow"] += f" (git {aiouow_revision()})"
    if dialect == "postgresql":
        versions["PostgreSQL"] = server_version
        versions["SQLite"] = sqlite3.sqlite_version
    else:
        versions["SQLite"] = server_version
    return Environment(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram=_ram(),
        python=platform.python_version(),
        versions=versions,
        load=_load(),
    )


def command_line(module: str) -> str:
    """The command that is running, passwords in URLs hidden."""
    line = shlex.join(["python", "-m", module, *sys.argv[1:]])
    return re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", line)
