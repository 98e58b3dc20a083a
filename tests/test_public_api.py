"""The public namespace is exactly what API.md promises (plus documented additions)."""

from __future__ import annotations

import aiouow

EXPECTED = {
    # entities and queries
    "Entity",
    "field",
    "fields",
    "Column",
    "Expression",
    "Ordering",
    "Alias",
    "aliased",
    "asdict",
    "col",
    "select",
    "task_session",
    "update",
    "Savepoint",
    "SavepointState",
    "Select",
    "func",
    "Aggregate",
    # pool and session
    "create_pool",
    "current_session",
    "Pool",
    "PoolStats",
    "AsyncSession",
    "ObjectState",
    "SessionState",
    "SessionStats",
    # errors
    "errors",
    "event",
    "AiouowError",
    "ConfigurationError",
    "MappingError",
    "QueryError",
    "SchemaError",
    "SessionError",
    "SessionClosedError",
    "DetachedInstanceError",
    "ConcurrentUseError",
    "NotFoundError",
    "MultipleResultsError",
    "NPlusOneError",
    "NotLoadedError",
    "relationship",
    "rel",
    "run_transaction",
    "Relationship",
    "NPlusOneWarning",
    "DatabaseError",
    "IntegrityError",
    "Isolation",
    "UniqueViolationError",
    "ForeignKeyViolationError",
    "NotNullViolationError",
    "CheckViolationError",
    "DataError",
    "OperationalError",
    "ConnectionLostError",
    "PoolTimeoutError",
    "SerializationError",
    "StaleDataError",
    "CommitOutcomeUnknownError",
}


def test_all_is_exactly_the_public_surface() -> None:
    """__all__ lists the public names, each importable; nothing private leaks."""
    assert set(aiouow.__all__) == EXPECTED
    for name in aiouow.__all__:
        assert hasattr(aiouow, name)
    public = {n for n in vars(aiouow) if not n.startswith("_")}
    submodules = {"dialects", "integrations", "testing", "mypy"}  # present once imported
    assert public - set(aiouow.__all__) <= submodules | {"annotations"}


def test_py_typed_ships() -> None:
    """The package is marked typed."""
    from importlib.resources import files

    assert files("aiouow").joinpath("py.typed").is_file()
