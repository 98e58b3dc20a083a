"""What type checkers see of entities: mypy strict, run on code written the way users write it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_CODE = """
from __future__ import annotations

from aiouow import AsyncSession, Entity, field, func, relationship, select


class Team(Entity, table="typing_teams"):
    id: int = field(primary_key=True)
    name: str
    heroes: list[Hero] = relationship(back_populates="team")


class Hero(Entity, table="typing_heroes"):
    id: int = field(primary_key=True)
    name: str
    secret_name: str = ""
    team_id: int | None = field(default=None, foreign_key="typing_teams.id")
    team: Team | None = relationship(back_populates="heroes")


hero = Hero(name="Deadpond")
hero.name = "Dead Pond"
hero.secret_name = "Wade"
z_force = Team(name="Z-Force", heroes=[hero, Hero(name="Rusty-Man")])
hero.team = z_force
hero.team = None
z_force.heroes.append(Hero(name="Spider-Boy", team=z_force))


async def report(s: AsyncSession) -> None:
    rows: list[tuple[str, int]] = await s.rows(select(Hero.name, func.count(Hero.id)).group_by(Hero.name))
    best: int | None = await s.scalar(select(func.max(Hero.id)))
    many: int = await s.count(select(Hero))
    heroes: list[Hero] = await s.scalars(select(Hero).where(Hero.name == "x").load(Hero.team))
    await s.load(heroes, Hero.team)
    team: Team | None = heroes[0].team
    names: list[str] = [h.name for h in team.heroes] if team else []
    print(rows, best, many, heroes, names)
"""


def _mypy(tmp_path: Path, code: str, *, plugin: bool = False) -> tuple[str, int]:
    path = tmp_path / "user_code.py"
    path.write_text(textwrap.dedent(code))
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n" + ("plugins = aiouow.mypy\n" if plugin else ""))
    # In a process of its own: mypy raises the interpreter's recursion limit for good.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(path)],
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


def test_a_selection_has_the_type_of_its_rows(tmp_path: Path) -> None:
    wrong = USER_CODE + (
        "\n\nasync def wrong(s: AsyncSession) -> None:\n"
        "    rows: list[tuple[int, int]] = await s.rows(select(Hero.name, func.count(Hero.id)))\n"
    )
    out, status = _mypy(tmp_path, wrong)
    assert status == 1 and 'incompatible type "str"; expected "int"' in out, out


def test_relationships_are_typed_in_init_and_assignment(tmp_path: Path) -> None:
    wrong = USER_CODE + 'hero.team = "Z-Force"\nTeam(name="x", heroes=[z_force])\n'
    out, status = _mypy(tmp_path, wrong)
    assert status == 1, out
    assert 'Incompatible types in assignment (expression has type "str", variable has type "Team | None")' in out, out
    assert 'List item 0 has incompatible type "Team"; expected "Hero"' in out, out


QUERIES = """

class Villain(Entity, table="typing_villains"):
    id: int = field(primary_key=True)
    name: str
    age: int | None = None

    def title(self) -> str:
        return f"the villain {self.name}"


async def queries(s: AsyncSession) -> None:
    young: list[Villain] = await s.scalars(
        select(Villain).where(Villain.age < 30, Villain.age > 3, Villain.id.in_([1, 2])).order_by(Villain.name.desc())
    )
    rows: list[tuple[str, int | None, float | None]] = await s.rows(
        select(Villain.name, func.max(Villain.age), func.avg(Villain.age)).group_by(Villain.name)
    )
    keys = [r[0] for r in await s.rows(select(Villain.id))]  # (a select passed straight to rows())
    oldest: int | None = await s.scalar(select(func.max(Villain.age)))
    ages: list[int | None] = [v.age for v in young] + [oldest] + [k for k in keys]
    title: str = young[0].title()
    print(rows, ages, title, col(Villain.id).desc())
"""


def test_with_the_plugin_fields_on_the_class_are_columns(tmp_path: Path) -> None:
    code = USER_CODE.replace("relationship, select", "relationship, select, col") + QUERIES
    out, status = _mypy(tmp_path, code, plugin=True)
    assert status == 0, out
    out, status = _mypy(tmp_path, code)  # what the plugin is for: PEP 681 types Villain.age as int | None
    assert status == 1, out
    assert 'Unsupported operand types for < ("int" and "None")' in out, out
    assert '"int" has no attribute "in_"' in out, out


def test_with_the_plugin_wrong_types_are_still_found(tmp_path: Path) -> None:
    code = USER_CODE.replace("relationship, select", "relationship, select, col") + QUERIES
    wrong = code + (
        "\n\nasync def wrong(s: AsyncSession, v: Villain) -> None:\n"
        "    rows: list[tuple[int, int]] = await s.rows(select(Villain.name, func.count(Villain.id)))\n"
        "    v.age = 'old'\n"
        "    name: int = v.name\n"
    )
    out, status = _mypy(tmp_path, wrong, plugin=True)
    assert status == 1, out
    assert 'has incompatible type "Select[tuple[str, int]]"; expected "Select[tuple[int, int]]"' in out, out
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int | None")' in out, out
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in out, out
