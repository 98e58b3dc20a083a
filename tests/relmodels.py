"""Entities with relationships, shared by the relationship tests."""

from __future__ import annotations

from aiouow import Entity, field, relationship


class Team(Entity, table="rel_teams"):
    id: int = field(primary_key=True)
    name: str
    heroes: list[Hero] = relationship(back_populates="team")


class Hero(Entity, table="rel_heroes"):
    id: int = field(primary_key=True)
    name: str
    team_id: int | None = field(default=None, foreign_key="rel_teams.id", index=True, on_delete="set null")
    team: Team | None = relationship(back_populates="heroes")
    powers: list[Power] = relationship(link="HeroPower")
    passport: Passport | None = relationship()


class Power(Entity, table="rel_powers"):
    id: int = field(primary_key=True)
    name: str


class HeroPower(Entity, table="rel_hero_powers"):
    hero_id: int = field(primary_key=True, init=True, foreign_key="rel_heroes.id", on_delete="cascade")
    power_id: int = field(primary_key=True, init=True, foreign_key="rel_powers.id", on_delete="restrict")
    level: int = 1


class Passport(Entity, table="rel_passports"):
    id: int = field(primary_key=True)
    number: str
    hero_id: int = field(foreign_key="rel_heroes.id", unique=True, on_delete="cascade")


class Node(Entity, table="rel_nodes"):
    id: int = field(primary_key=True)
    label: str
    parent_id: int | None = field(default=None, foreign_key="rel_nodes.id", on_delete="cascade")
    parent: Node | None = relationship(fk="parent_id")
    children: list[Node] = relationship(fk="parent_id")


REL_ALL = (Team, Hero, Power, HeroPower, Passport, Node)
