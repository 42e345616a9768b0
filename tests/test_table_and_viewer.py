"""The timeline as a table to work with (sorted, filtered, matched), the experiment screen
(neighbours, diff against the best or the baseline, wrap, copy), compare, and the numbers
the status line gives their meaning — each driven by its keys on a recorded session."""
from __future__ import annotations

import contextlib
import json

from test_screen_truth import journal_shown, recorded, run
from test_widgets import screen_text
from textual.widgets import Input

from cockpit.tui.screens.experiment import ExperimentScreen
from cockpit.tui.view import SessionView
from cockpit.tui.widgets.diff_view import DiffView
from cockpit.tui.widgets.status_bar import Status, fit_parts, status_parts
from cockpit.tui.widgets.timeline import Timeline


def shown_order(timeline: Timeline) -> list[int]:
    return [timeline._n_at(i) for i in range(timeline.row_count)]


def test_the_timeline_sorts_and_filters_by_keys(tmp_path):
    app, _ = recorded(tmp_path, 30)

    async def scenario(pilot):
        timeline = await journal_shown(pilot, app, 30)
        timeline.focus()
        view = app.view
        await pilot.press("o")  # by metric, best first
        await pilot.pause()
        order = shown_order(timeline)
        values = [view.state.get(n).metric for n in order]
        measured = [v for v in values if v is not None]
        assert measured == sorted(measured) and values[-1] is None  # crashes go last
        assert "by metric" in str(timeline.border_title)
        await pilot.press("o")  # by gain, largest first
        await pilot.pause()
        gains = [r.gain for r in (timeline._rows[n] for n in shown_order(timeline))
                 if r.gain is not None]
        assert gains == sorted(gains, reverse=True)
        await pilot.press("o", "o")  # by time, then back to newest first
        await pilot.pause()
        assert shown_order(timeline) == list(range(30, 0, -1))
        await pilot.press("f")  # keeps only
        await pilot.pause()
        keeps = [n for n in range(30, 0, -1) if view.state.get(n).status == "keep"]
        assert shown_order(timeline) == keeps and "keeps only" in str(timeline.border_title)
        assert f"({len(keeps)} of 30)" in str(timeline.border_title)
        await pilot.press("f", "f")  # no early stops, then all again
        await pilot.press("F")
        await pilot.pause()
        app.screen.query_one(Input).value = "0.0025 ->"
        await pilot.press("enter")
        await pilot.pause()
        matched = shown_order(timeline)
        assert matched and all("0.0025 ->" in view.state.get(n).description for n in matched)
        await pilot.press("F", "enter")  # empty: every row again
        await pilot.pause()
        assert len(shown_order(timeline)) == 30

    run(app, scenario)


def test_a_filtered_timeline_takes_new_rows_where_they_belong(tmp_path):
    app, ws = recorded(tmp_path, 10)

    async def scenario(pilot):
        timeline = await journal_shown(pilot, app, 10)
        await pilot.press("f")  # keeps only
        await pilot.pause()
        before = shown_order(timeline)
        journal = ws / ".cockpit" / "demo" / "journal.jsonl"
        events = [json.loads(line) for line in journal.read_text().splitlines()]
        kept = dict(next(e for e in events if e["event"] == "result" and e["n"] == 10),
                    n=11, metric=0.9, status="keep", commit="b" * 40)
        for event in ({"event": "proposal", "time": 1, "n": 11, "description": "new idea",
                       "hypothesis": "", "diff": "", "params": {}}, kept):
            app.view.apply(event)
        app.refresh_experiments()
        await pilot.pause()
        assert shown_order(timeline) == [11] + before

    run(app, scenario)


def test_the_experiment_screen_steps_diffs_against_the_best_wraps_and_copies(tmp_path):
    app, _ = recorded(tmp_path, 6)
    copied = []
    app.copy_to_clipboard = copied.append

    async def scenario(pilot):
        timeline = await journal_shown(pilot, app, 6)
        timeline.focus()
        timeline.select(4)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExperimentScreen) and app.screen.title_text.startswith("#4")
        await pilot.press("left_square_bracket")
        await pilot.pause(0.2)
        assert app.screen.title_text.startswith("#3") and len(app.screen_stack) == 3
        await pilot.press("right_square_bracket", "right_square_bracket")
        await pilot.pause(0.2)
        assert app.screen.title_text.startswith("#5")
        screen = app.screen
        assert screen.against == "its parent"
        calls = []
        screen.around.against["the best"] = lambda: calls.append("best") or "--- a\n+++ b\n"
        await pilot.press("d")
        await pilot.pause(0.1)
        assert screen.against == "the best" and calls == ["best"]
        assert "against the best" in str(screen.query_one(DiffView).border_title)
        await pilot.press("w")
        assert screen.query_one(DiffView).wrap
        await pilot.press("y")
        assert copied == [f"git show {app.view.state.get(5).commit}"]
        await pilot.press("escape")
        assert app.screen is app.main

    run(app, scenario)


def test_compare_starts_afresh_and_names_no_single_why(tmp_path):
    app, _ = recorded(tmp_path, 6)

    async def scenario(pilot):
        timeline = await journal_shown(pilot, app, 6)
        timeline.focus()
        for n in (2, 5):
            timeline.select(n)
            await pilot.press("m")
        await pilot.press("c")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, ExperimentScreen) and screen.hypothesis == ""
        assert "#2 → #5" in screen.title_text
        await pilot.press("escape")
        assert timeline.marked == []  # the next `c` does not reuse these marks
        timeline.select(3)
        await pilot.press("m", "c")  # one mark: the best against the baseline
        await pilot.pause(0.2)
        assert "#2" not in app.screen.title_text.split(":")[0]

    run(app, scenario)


def test_a_mean_of_runs_carries_its_count_in_the_table():
    view = SessionView()
    commit = "c" * 40
    for event in ({"event": "session", "time": 0, "tag": "t", "branch": "b", "base": "0" * 40,
                   "metric": "val_bpb", "direction": "lower"},
                  {"event": "proposal", "time": 1, "n": 1, "description": "baseline",
                   "hypothesis": "", "diff": "", "params": {}},
                  {"event": "commit", "time": 1, "n": 1, "commit": commit},
                  {"event": "run_start", "time": 1, "n": 1, "commit": commit, "log": "x"},
                  {"event": "result", "time": 2, "n": 1, "commit": commit, "status": "keep",
                   "metric": 1.0, "memory_gb": 1.0, "summary": {}, "seconds": 10.0},
                  {"event": "measure", "time": 3, "k": 1, "commit": commit,
                   "purpose": "noise", "metric": 1.2, "log": "y"}):
        view.apply(event)
    row = view.rows()[0]
    assert row.runs == 2 and abs(row.metric - 1.1) < 1e-9  # the judge's number, not run one
    assert row.cells([c for c in __import__("cockpit.tui.widgets.timeline", fromlist=["x"])
                      .layout_columns(80, "val_bpb", 2, False) if c.key == "metric"])[0] \
        .plain.strip() == "1.100000²"


def test_the_status_line_gives_numbers_their_meaning():
    young = Status("training", n=3, best=1.3, best_runs=2, best_vs_baseline=0.0, bar=-1.3,
                   bar_young=True, noise=2.6, noise_runs=2, per_hour=11.0, session_eta=3900,
                   confidence=6.2)
    wide = fit_parts(status_parts(young, 300), 300).plain
    for part in ("best 1.300000 (2 runs)", "bar -1.3000: more baseline runs needed",
                 "11.0 exp/h", "done in 1h05m", "6.2x the noise"):
        assert part in wide, wide
    narrow = fit_parts(status_parts(young, 80), 80).plain
    assert "bar out of reach" in narrow or "more baseline runs" in narrow
    usual = Status("training", n=3, best=1.2, bar=1.19, noise=0.003, noise_runs=5)
    assert "to keep: < 1.190000" in fit_parts(status_parts(usual, 200), 200).plain


def test_an_outside_editor_that_takes_a_line_opens_on_the_change(tmp_path):
    """$EDITOR=vi gets `+LINE` of the change's first line; one that does not take it
    (code --wait) is not handed a file named +LINE."""
    app, _ = recorded(tmp_path, 3)
    said = tmp_path / "argv"
    for name in ("vi", "code"):
        script = tmp_path / name
        script.write_text(f"#!/bin/sh\necho \"$@\" >> {said}\nexit 1\n")
        script.chmod(0o755)

    app.suspend = contextlib.nullcontext  # a test has no terminal to hand over

    async def scenario(pilot):
        await journal_shown(pilot, app, 3)
        exp = app.view.state.get(2)  # its change is on line 2 of train.py
        for editor in (str(tmp_path / "vi"), f"{tmp_path / 'code'} --wait"):
            assert app._edit_outside(editor, exp, "source\n") is None  # exit 1: unchanged

    run(app, scenario)
    first, second = said.read_text().splitlines()
    assert first.split()[0] == "+2" and first.split()[1].endswith(".py")
    assert second.split()[0] == "--wait" and not any(a.startswith("+") for a in second.split())


def test_k_shows_what_each_setting_did(tmp_path):
    app, _ = recorded(tmp_path, 12)

    async def scenario(pilot):
        await journal_shown(pilot, app, 12)
        await pilot.press("K")
        await pilot.pause(0.2)
        from cockpit.tui.screens.settings import SettingsScreen

        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        (setting,) = screen.settings  # every change of this session moves LEARNING_RATE
        assert setting.name == "LEARNING_RATE" and len(setting.tries) == 11
        state = app.view.state
        assert setting.kept == sum(state.get(t.n).status == "keep" for t in setting.tries)
        first = setting.tries[0]
        assert (first.n, first.old, first.new) == (2, "0.005", "0.00333333")
        shown = screen_text(app)
        assert "LEARNING_RATE" in shown and "#2" in shown and "0.005 → 0.00333333" in shown
        await pilot.press("escape")
        assert app.screen is app.main

    run(app, scenario)
