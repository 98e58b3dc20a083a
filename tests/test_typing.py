"""What type checkers see of entities: mypy strict, run on code written the way users write it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_CODE = """
from aiouow import Entity, field


class Hero(Entity, table="typing_heroes"):
    id: int = field(primary_key=True)
    name: str
    secret_name: str = ""


hero = Hero(name="Deadpond")
hero.name = "Dead Pond"
hero.secret_name = "Wade"
"""


def _mypy(tmp_path: Path, code: str) -> tuple[str, int]:
    path = tmp_path / "user_code.py"
    path.write_text(textwrap.dedent(code))
    # In a process of its own: mypy raises the interpreter's recursion limit for good.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr, done.returncode


def test_fields_type_check_and_a_misspelt_attribute_does_not(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, USER_CODE)
    assert status == 0, out
    out, status = _mypy(tmp_path, USER_CODE + 'hero.secert_name = "typo"\n')
    assert status == 1
    assert '"Hero" has no attribute "secert_name"' in out, out
