"""Asset tests: no test may leave a Dagster instance installed for the next one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_leaked_defs_state_storage():
    """Fail the test that leaves a Dagster instance's defs-state storage installed process-wide.

    Entering a ``DagsterInstance`` installs its storage in a ContextVar; an evaluation context that is
    never closed (``build_schedule_context`` without ``with``) resets it later to a disposed instance, and
    some unrelated later test then fails with "Attempted to resolve undefined DagsterInstance weakref".
    """
    from dagster._core.storage.defs_state.base import DefsStateStorage

    before = DefsStateStorage.get()
    yield
    after = DefsStateStorage.get()
    assert after is before, (
        f"this test left Dagster's defs-state storage changed ({before!r} -> {after!r}): close every "
        "build_schedule_context/build_sensor_context with `with` inside its instance_for_test block"
    )
