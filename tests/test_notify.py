"""Notifications through apprise, for real: a session's news posted by apprise's JSON
plugin to an HTTP receiver this test runs (healthy, failing with 500, or hanging), the
notifier a client of the session's socket (the loop never calls it), `cockpit notify
--test` as a subprocess, and the watcher's rules on journal events."""
from __future__ import annotations

import asyncio
import base64
import http.server
import io
import json
import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from support import FAKE_TRAIN, ScriptedAgent, cockpit, faulty_train, make_workspace, read_journal

from cockpit.agents import AgentUnavailable
from cockpit.domain.exits import EXIT_PAUSED
from cockpit.notify.notifier import Notifier, attach
from cockpit.notify.services import redact
from cockpit.notify.watcher import Watcher
from cockpit.session.coordinator import Coordinator
from cockpit.session.server import serve_session
from cockpit.workspace.config import Config, NotifyConfig

SECRET = "s3cretT0ken"
BETTER = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")


class Receiver:
    """An HTTP server that records what apprise posts; `mode` says how it answers: 200,
    500, or "hang" (answers only after `hang` seconds)."""

    def __init__(self, mode="200", hang: float = 5.0) -> None:
        self.mode, self.hang = mode, hang
        self.posts: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append({"path": self.path, **json.loads(body)})
                if receiver.mode == "hang":
                    time.sleep(receiver.hang)
                self.send_response(500 if receiver.mode == "500" else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, options: str = "") -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook/{SECRET}{options}"

    def titles(self) -> list[str]:
        return [p["title"] for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(mode="200", **kwargs):
        made.append(Receiver(mode, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


class ScriptThenOutage(ScriptedAgent):
    """Proposes the given sources, then finds its provider down (the loop pauses)."""

    def propose(self, ctx):
        if not self.sources:
            raise AgentUnavailable("the model provider is down (HTTP 503 three times)")
        return super().propose(ctx)


class Watched:
    """The notifier a session started (None when it had no URL)."""

    notifier: Notifier | None = None


def news_session(ws: Path, urls: list[str], crash_seconds: float = 0.0,
                 **notify) -> tuple[Coordinator, Watched]:
    """A session through serve_session, as `cockpit run` runs it: the baseline, a better
    change (kept), two crashes (each after crash_seconds), then the provider goes down: it
    pauses, and with no one to resume it, ends."""
    config = Config()
    config.judge.baseline_runs = 1
    config.judge.min_delta = 0.0
    config.notify = NotifyConfig(urls=urls, crash_streak=2, min_interval=0.0, summary_at="",
                                 retries=1, backoff=0.05, **notify)
    crash = faulty_train("raises").replace("SEED = 42", f"SEED = 42\ntime.sleep({crash_seconds})")
    agent = ScriptThenOutage(BETTER, crash, crash)
    coordinator = Coordinator(ws, config, "t", agent=agent)
    watched = Watched()

    def start(since: int) -> Notifier | None:  # as `cockpit run` starts it
        watched.notifier = attach(ws, config.notify, "t", since)
        return watched.notifier

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ending = serve_session(coordinator, None, background=False, companions=[start])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert ending.code == EXIT_PAUSED, ending
    # the loop never calls the notifier: it reads the session's feed like any client
    assert not any(isinstance(getattr(o, "__self__", None), Notifier)
                   for o in coordinator.observers)
    return coordinator, watched


def everything_written(ws: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in ws.rglob("*")
                     if p.is_file() and ".git" not in p.parts)


def test_each_piece_of_news_arrives_once_with_its_figures(tmp_path, receiver, capfd):
    ok = receiver("200")
    ws = make_workspace(tmp_path / "ws")
    coordinator, watched = news_session(ws, [ok.url()])

    said = "\n\n".join(f"{p['title']}\n{p['message']}" for p in ok.posts)
    for news in ("new best val_bpb", "2 crashes in a row", "paused: it waits for you",
                 "session ended: paused"):
        assert said.count(news) == 1, said  # each once (two at the same moment: one post)
    two = coordinator.state.get(2)
    assert two.status == "keep"
    assert f"#2 scripted change 2: val_bpb {two.metric:.6f}; gain {-two.delta_best:.6f} over " \
           "the best" in said
    assert "vs the baseline 1.260000" in said
    assert "the last: #4 scripted change 4: exit code 1" in said
    assert "CUDA error: out of memory" in said
    assert "the model provider is down" in said
    assert "4 experiments: 1 kept, 0 discarded, 2 crashed" in said
    assert f"best {two.metric:.6f} (#2 scripted change 2), baseline 1.260000" in said
    assert all(p["path"] == f"/hook/{SECRET}" for p in ok.posts)

    assert watched.notifier is not None and watched.notifier.subscription is not None
    # the URL's token is nowhere in the journal, the session's files or its output
    out = capfd.readouterr()
    assert SECRET not in everything_written(ws) + out.out + out.err
    session = read_journal(ws, "t")[0]
    assert session["config"]["notify"]["urls"] == ["json://***"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_failing_service_never_slows_the_loop_and_is_reported_once(tmp_path, receiver,
                                                                      capfd, mode):
    bad = receiver(mode, hang=3.0)
    ws = make_workspace(tmp_path / "ws")
    start = time.monotonic()
    # the crashes take a while: the failure is in before the session ends
    coordinator, _ = news_session(ws, [bad.url("?rto=0.3&cto=0.3"), "nonsense://x"],
                                  crash_seconds=1.5)
    seconds = time.monotonic() - start

    assert bad.posts, "apprise did post"
    out = capfd.readouterr()
    assert SECRET not in everything_written(ws) + out.out + out.err
    assert "notifications to JSON (urls[1]) fail" in out.err
    assert seconds < 60
    if mode == "500":  # it failed while the session ran: journaled once, on the live state
        failed = {e["service"]: e["error"] for e in coordinator.events
                  if e["event"] == "notify_failed"}
        assert len(failed) == 2, failed  # once each, however many messages failed
        assert "500" in failed["JSON (urls[1])"]
        assert "not a URL apprise knows" in failed["urls[2] (nonsense://...)"]
        assert coordinator.live()["notify_failing"] == ["JSON (urls[1])",
                                                        "urls[2] (nonsense://...)"]
        assert len(bad.posts) >= 2 * 2  # each message: one try and one resend


@pytest.fixture(scope="module")
def news_journal(tmp_path_factory) -> list[dict]:
    """The journal of news_session, run once with no notifier."""
    ws = make_workspace(tmp_path_factory.mktemp("news") / "ws")
    news_session(ws, [])
    return read_journal(ws, "t")


def wait_for_posts(receiver: Receiver, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.posts) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_a_burst_to_one_service_is_merged(receiver, news_journal):
    ok = receiver("200")
    settings = NotifyConfig(urls=[ok.url()], min_interval=30.0, summary_at="", crash_streak=2)
    notifier = Notifier(settings, "t")
    kept = next(i for i, e in enumerate(news_journal) if e["event"] == "result" and e["n"] == 2)
    notifier.observe({"type": "journal", "start": 0, "events": news_journal[:kept + 1]})
    wait_for_posts(ok, 1)
    for i in range(kept + 1, len(news_journal)):  # the rest, one event at a time
        notifier.observe({"type": "journal", "start": i, "events": [news_journal[i]]})
    time.sleep(0.5)
    assert len(ok.posts) == 1  # the first went out; the rest wait out the interval
    notifier.close()  # the session's end: what waits goes out now, as one message
    assert len(ok.posts) == 2, ok.titles()
    assert "new best" in ok.posts[0]["title"]
    assert ok.posts[1]["title"] == "cockpit t: 3 updates"
    for words in ("2 crashes in a row", "paused: it waits for you", "session ended"):
        assert words in ok.posts[1]["message"]


def test_a_resumed_session_says_only_what_is_new(receiver, news_journal):
    """What happened before the notifier came (a resumed session's past) is folded, so its
    figures are right, and never said again."""
    ok = receiver("200")
    settings = NotifyConfig(urls=[ok.url()], min_interval=0.0, summary_at="", crash_streak=2)
    kept = next(i for i, e in enumerate(news_journal) if e["event"] == "result" and e["n"] == 2)
    notifier = Notifier(settings, "t", quiet=kept + 1)
    notifier.observe({"type": "journal", "start": 0, "events": news_journal[:kept + 3]})
    notifier.observe({"type": "journal", "start": kept + 3, "events": news_journal[kept + 3:]})
    notifier.close()
    said = "\n".join(f"{p['title']}\n{p['message']}" for p in ok.posts)
    assert "new best" not in said  # #2's keep came before the notifier
    assert "2 crashes in a row" in said and "session ended" in said
    assert "4 experiments: 1 kept, 0 discarded, 2 crashed" in said  # the past is counted


@pytest.mark.slow
def test_the_daily_summary_comes_at_its_time_with_the_plot(tmp_path, receiver, news_journal):
    ok = receiver("200")
    soon = datetime.fromtimestamp(time.time() + 2).strftime("%H:%M:%S")
    settings = NotifyConfig(urls=[ok.url()], summary_at=soon, min_interval=0.0,
                            events=["summary"])
    running = [e for e in news_journal if e["event"] != "session_end"]
    notifier = Notifier(settings, "t", plot=tmp_path / "summary.png")
    notifier.observe({"type": "journal", "start": 0, "events": running})
    wait_for_posts(ok, 1)
    notifier.close()
    assert len(ok.posts) == 1, ok.titles()
    summary = ok.posts[0]
    assert "daily summary" in summary["title"]
    assert "4 experiments: 1 kept, 0 discarded, 2 crashed" in summary["message"]
    assert "baseline 1.260000" in summary["message"]
    assert "model cost $0.0000" in summary["message"]
    (plot,) = summary["attachments"]
    assert plot["filename"] == "summary.png" and plot["mimetype"] == "image/png"
    assert base64.b64decode(plot["base64"]).startswith(b"\x89PNG")


def result(n, status, metric=None, reason="", delta=None, at=0.0):
    return {"event": "result", "n": n, "status": status, "metric": metric, "reason": reason,
            "delta_best": delta, "time": at, "commit": f"{n:040x}"}


def proposal(n, description="LEARNING_RATE 0.01 -> 0.02"):
    return {"event": "proposal", "n": n, "description": description, "time": 0.0}


def watch(**settings) -> Watcher:
    watcher = Watcher(NotifyConfig(**settings), "t", now=1000.0)
    watcher.history([{"event": "session", "tag": "t", "branch": "autoresearch/t",
                      "base": "0" * 40, "metric": "val_bpb", "direction": "lower",
                      "time": 1000.0},
                     proposal(1, "baseline"), result(1, "keep", 1.3, at=1000.0)])
    return watcher


def test_watcher_rules():
    w = watch(crash_streak=2, stalled_experiments=3, stalled_hours=0)
    said = []
    for n, status in enumerate(["crash", "discard", "crash"], start=2):
        said += w.journal(proposal(n)) + w.journal(result(n, status, reason="exit code 1"))
    assert [n.kind for n in said] == ["stalled"]  # no two crashes in a row; 3 without a keep
    stopped = w.journal(proposal(5)) + w.journal(result(5, "crash",
                                                        reason="stopped by the human"))
    assert stopped == []  # a run the human stopped is neither a crash nor an idea tried
    said = w.journal(proposal(6)) + w.journal(result(6, "crash", reason="exit code 1"))
    assert [n.kind for n in said] == ["crashes"] and "#6" in said[0].body
    said = w.journal(proposal(7)) + w.journal(result(7, "keep", 1.2, delta=-0.1))
    assert [n.kind for n in said] == ["best"]
    assert ("gain 0.100000 over the best" in said[0].body
            and "-7.69% vs the baseline" in said[0].body)
    human = w.journal({"event": "paused", "kind": "human", "reason": "paused by the human"})
    assert human == []
    cost = w.journal({"event": "paused", "kind": "cost", "reason": "cost $5 reached"})
    assert [n.kind for n in cost] == ["paused"] and "spends past the limit" in cost[0].body


def test_watcher_clock_rules():
    w = watch(approval_minutes=10, stalled_hours=2, summary_at="")
    w.journal(proposal(2))
    w.live({"awaiting": [2]}, now=2000.0)
    assert w.tick(2000.0 + 9 * 60) == []
    said = w.tick(2000.0 + 10 * 60)
    assert [n.kind for n in said] == ["paused"] and "#2 waits for your approval" in said[0].title
    assert w.tick(2000.0 + 11 * 60) == []  # once per proposal
    said = w.tick(1000.0 + 2 * 3600)
    assert [n.kind for n in said] == ["stalled"] and "2 h 00 min" in said[0].title
    assert w.tick(1000.0 + 5 * 3600) == []
    filtered = watch(approval_minutes=1, events=["best"])
    filtered.live({"awaiting": [2]}, now=1000.0)
    assert filtered.tick(1000.0 + 3600) == []


def test_summary_time_is_crossed_once_a_day():
    w = watch(summary_at="08:00", stalled_hours=0)
    eight = datetime(2026, 11, 24, 8, 0, 0).timestamp()
    assert w.tick(eight - 1) == []
    said = w.tick(eight)
    assert [n.kind for n in said] == ["summary"]
    assert w.tick(eight + 1) == [] and w.tick(eight + 3600) == []
    w.last_tick = eight + 86400 - 0.5
    assert [n.kind for n in w.tick(eight + 86400 + 0.5)] == ["summary"]


def test_redaction_masks_what_may_be_a_token():
    urls = ["tgram://123456789:AAHsecretBotToken/987654", "json://user:pw123@host.example/p/"
            f"{SECRET}?token=abc123"]
    text = ("Failed to send Telegram notification to 987654 with 123456789:AAHsecretBotToken; "
            f"JSON POST to user:pw123@host.example/p/{SECRET} (token abc123)")
    masked = redact(text, urls)
    for secret in ("AAHsecretBotToken", "123456789", "987654", "pw123", SECRET, "abc123"):
        assert secret not in masked
    assert masked.startswith("Failed to send Telegram notification to ***")


@pytest.mark.slow
def test_notify_test_says_which_worked(tmp_path, receiver):
    ok, bad = receiver("200"), receiver("500")
    ws = make_workspace(tmp_path / "ws")
    urls = [ok.url(), bad.url(), "nonsense://x"]
    (ws / "cockpit.toml").write_text(f"[notify]\nurls = {json.dumps(urls)}\n")
    some = cockpit("notify", "--test", cwd=ws)
    assert some.returncode == 1, some.stderr
    lines = some.stdout.splitlines()
    assert lines[0] == "ok    JSON (urls[1])"
    assert lines[1].startswith("FAIL  JSON (urls[2]): ") and "500" in lines[1]
    assert lines[2].startswith("FAIL  urls[3] (nonsense://...) is not a URL apprise knows")
    assert lines[3] == "1 of 3 worked"
    assert SECRET not in some.stdout + some.stderr
    assert ok.posts[0]["title"] == "cockpit: a test message" and len(bad.posts) == 1

    (ws / "cockpit.toml").write_text(f"[notify]\nurls = {json.dumps(urls[:1])}\n")
    every = cockpit("notify", "--test", cwd=ws)
    assert every.returncode == 0 and every.stdout.splitlines()[-1] == "1 of 1 worked"
    listed = cockpit("notify", cwd=ws)
    assert listed.returncode == 0 and listed.stdout.splitlines()[0] == "JSON (urls[1])"

    (ws / "cockpit.toml").write_text("[notify]\nurls = []\n")
    none = cockpit("notify", "--test", cwd=ws)
    assert none.returncode == 2 and "no notification URL" in none.stderr


def test_doctor_checks_each_url(tmp_path, receiver):
    from cockpit.cli.doctor import Report
    from cockpit.notify.checks import check

    config = Config()
    config.notify.urls = [receiver("200").url(), "nonsense://x"]
    report = Report(io.StringIO())
    for finding in check(config):
        report.line(finding.level, finding.what, finding.text)
    out = report.stream.getvalue()
    assert "FIX   notify     urls[2] (nonsense://...) is not a URL apprise knows" in out
    assert "ok    notify     JSON (urls[1])" in out and SECRET not in out
    assert report.fixes == 1


@pytest.mark.slow
def test_the_status_line_shows_a_failing_service(tmp_path, receiver):
    from tui_support import slow_train, wait_for

    from cockpit.client.bootstrap import start_detached
    from cockpit.tui.app import CockpitApp
    from cockpit.workspace.lock import read_session

    bad = receiver("500")
    ws = make_workspace(tmp_path / "ws", train=slow_train(steps=40, delay=0.05))
    (ws / "cockpit.toml").write_text(
        "[judge]\nbaseline_runs = 1\n[notify]\n"
        f"urls = [\"{bad.url()}\"]\nretries = 0\nmin_interval = 0.0\nevents = [\"ended\", "
        "\"best\", \"paused\"]\napproval_minutes = 0.01\n")
    start_detached(ws, "t", ["--review", "--experiments", "3"])
    app = CockpitApp(ws, "t", watch_program=False)

    async def scenario():
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: app.view.live.get("notify_failing"), timeout=60,
                           what="the failing service on the live state")
            await pilot.pause(1.2)
            status = app.main.query_one("#status").status
            assert "notify failing: JSON (urls[1])" in status.flags
            assert SECRET not in status.flags

    try:
        asyncio.run(scenario())
    finally:
        info = read_session(ws)
        if info is not None and info.alive:
            os.kill(info.pid, signal.SIGKILL)
    failed = [e for e in read_journal(ws, "t") if e["event"] == "notify_failed"]
    assert len(failed) == 1 and failed[0]["service"] == "JSON (urls[1])"


@pytest.mark.parametrize("toml, says", [
    (f'urls = "tgram://{SECRET}/123"', "[notify] urls must be a list of strings, got str"),
    ('events = ["best", "sometimes"]', "[notify] events has 'sometimes'; allowed: best, paused"),
    ('summary_at = "8am"', '[notify] summary_at must be a local time like "08:00"'),
    ("crash_streak = -1", "[notify] crash_streak must be between 0 and 1000"),
])
def test_a_bad_notify_setting_is_one_line(tmp_path, toml, says):
    ws = make_workspace(tmp_path / "ws")
    (ws / "cockpit.toml").write_text(f"[notify]\n{toml}\n")
    result = cockpit("notify", cwd=ws)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and SECRET not in result.stderr
