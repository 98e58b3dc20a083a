"""Behind PgBouncer in transaction-pooling mode, with statement_cache_size=0.

Starts Debian's ``pgbouncer`` on a free loopback port in front of the local PostgreSQL, then
runs a representative slice of the session tests through it, in a child pytest, with
``AIOUOW_STATEMENT_CACHE_SIZE=0``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import PG_URL

SLICE = ["test_session.py", "test_query.py", "test_identity.py", "test_unitofwork.py", "test_types.py"]


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def bouncer() -> Iterator[tuple[str, Path]]:
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        _skip_or_fail("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    assert binary is not None
    target = urlsplit(PG_URL)
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="aiouow-pgbouncer-"))
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={target.hostname or '127.0.0.1'} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        "auth_type = trust\n"
        f"auth_file = {workdir / 'users.txt'}\n"
        "pool_mode = transaction\n"
        "max_client_conn = 200\ndefault_pool_size = 4\n"
        "unix_socket_dir =\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    user = target.username or "postgres"
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    command = [binary, str(config)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(workdir, "postgres")
        for f in workdir.iterdir():
            shutil.chown(f, "postgres")
        workdir.chmod(0o755)
        command = ["runuser", "-u", "postgres", "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = (workdir / "pgbouncer.log").read_text() if (workdir / "pgbouncer.log").exists() else ""
                _skip_or_fail(f"pgbouncer exited at start: {out}{log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        dbname = target.path.lstrip("/") or "postgres"
        yield f"postgresql://{user}@127.0.0.1:{port}/{dbname}", workdir / "pgbouncer.log"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_session_slice_runs_through_pgbouncer(bouncer: tuple[str, Path]) -> None:
    """The session, query, identity, flush and type tests pass through PgBouncer (transaction mode)."""
    bouncer_url, log = bouncer
    here = Path(__file__).parent
    env = {**os.environ, "AIOUOW_PG_URL": bouncer_url, "AIOUOW_STATEMENT_CACHE_SIZE": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "postgresql", *SLICE],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    tail = (result.stdout + result.stderr)[-3000:]
    assert result.returncode == 0, tail
    assert " passed" in tail and " skipped" not in tail, tail
    assert "login attempt" in log.read_text()  # the child's connections really went through PgBouncer
