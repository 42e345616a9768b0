"""SVG snapshots of the cockpit's main layouts (pytest-textual-snapshot).

A synthetic finished session keeps every pixel deterministic: no clock, no git shas, no
training. Update the baselines with `pytest --snapshot-update` after a deliberate change."""
from __future__ import annotations

import pytest
from tui_support import synthetic_session

from cockpit.tui.app import CockpitApp
from cockpit.tui.replay_app import ReplayApp

pytest.importorskip("pytest_textual_snapshot")


@pytest.fixture
def session(tmp_path):
    return synthetic_session(tmp_path / "ws", 24)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_main_layout(session, snap_compare, size):
    app = CockpitApp(session, "demo", watch_program=False)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_replay_layout(session, snap_compare, size):
    app = ReplayApp(session, "demo")
    assert snap_compare(app, terminal_size=size, press=["left", "left"], run_before=_settle)


async def _settle(pilot):
    await pilot.pause(0.3)
