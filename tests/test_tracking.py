"""Experiment tracking, for real: sessions through serve_session with the exporter started
as `cockpit run` starts it (a process beside the session), their TensorBoard event files
read back with TensorBoard's own reader and served by a real `tensorboard`, a resume that
repeats nothing, trackers that break (a folder that cannot be made, a library missing, an
exporter frozen) while the session goes on."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    cockpit,
    faulty_train,
    free_port,
    make_workspace,
    wait_for,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from cockpit.cli.main import tracker_of
from cockpit.domain.findings import FIX, OK
from cockpit.session.coordinator import Coordinator
from cockpit.session.server import serve_session
from cockpit.tracking import checks
from cockpit.tracking.companion import TrackerProcess, attach
from cockpit.tracking.exporter import Marker, installed
from cockpit.tracking.records import MAX_POINTS, loss_points
from cockpit.workspace.config import Config, ConfigError, TrackingConfig, load_config
from cockpit.workspace.journal import Journal
from cockpit.workspace.paths import journal_path, tensorboard_dir, tracked_marker

BETTER = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
WORSE = FAKE_TRAIN.replace("BATCH_SIZE = 16", "BATCH_SIZE = 64")
CRASH = faulty_train("raises")  # prints its loss curve, then dies
# The fake's progress lines, read here on their own (not with the code under test).
PROGRESS = re.compile(r"step (\d+) \([\d.]+%\) \| loss: ([-\d.]+)")


class Started:
    """The exporters a test's sessions started (None where nothing is tracked)."""

    def __init__(self) -> None:
        self.trackers: list[TrackerProcess | None] = []


def tracked_session(ws: Path, *sources: str, experiments: int, settings=None,
                    started: Started | None = None, start=None):
    """A session through serve_session with the exporter `cockpit run` starts (or `start`):
    the baseline, then `sources` in order. (coordinator, ending)."""
    config = Config()
    config.judge.baseline_runs = 1
    config.judge.min_delta = 0.0
    config.tracking = settings or TrackingConfig()
    coordinator = Coordinator(ws, config, "t", agent=ScriptedAgent(*sources))
    begin = start or tracker_of(ws, config, "t")  # as `cockpit run` starts it
    started = started or Started()

    def watched(since: int):
        tracker = begin(since)
        started.trackers.append(tracker)
        return tracker

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ending = serve_session(coordinator, experiments, background=False, companions=[watched])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    return coordinator, ending


def results(ws: Path) -> list[dict]:
    return [e for e in Journal(journal_path(ws, "t")).read() if e["event"] == "result"]


def logged_losses(ws: Path, result: dict) -> list[tuple[int, float]]:
    """The (step, loss) points the experiment's run printed, read from its log here."""
    proposal = next(e for e in Journal(journal_path(ws, "t")).read()
                    if e["event"] == "run_start" and e["n"] == result["n"])
    text = (ws / proposal["log"]).read_text()
    return [(int(step), float(loss)) for step, loss in PROGRESS.findall(text)]


def points(run: Path, tag: str) -> list[tuple[int, float]]:
    """A TensorBoard run's points of `tag`, read with TensorBoard's own reader."""
    reader = EventAccumulator(str(run))
    reader.Reload()
    if tag not in reader.Tags()["tensors"]:
        return []
    return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
            for e in reader.Tensors(tag)]


def text_of(run: Path, tag: str = "result") -> str:
    reader = EventAccumulator(str(run))
    reader.Reload()
    return "\n".join(tensor_util.make_ndarray(e.tensor_proto).item().decode()
                     for e in reader.Tensors(tag))


def experiment_runs(ws: Path) -> dict[int, Path]:
    """n -> its TensorBoard run's folder."""
    found = {}
    for path in tensorboard_dir(ws, "t").iterdir():
        if path.name[:4].isdigit():
            found[int(path.name[:4])] = path
    return found


def check_exported(ws: Path) -> None:
    """Every result of the journal is in TensorBoard as its run's log and the journal say:
    the loss by step, the metric, the verdict; the session's run has the metric per n."""
    runs = experiment_runs(ws)
    done = results(ws)
    assert sorted(runs) == [r["n"] for r in done]
    for result in done:
        run = runs[result["n"]]
        losses = points(run, "train/loss")
        assert [s for s, _ in losses] == [s for s, _ in logged_losses(ws, result)]
        assert [v for _, v in losses] == pytest.approx([v for _, v in logged_losses(ws, result)])
        assert losses, f"#{result['n']} printed a loss curve"
        metric = points(run, "val_bpb")
        if result.get("metric") is None:
            assert metric == []
        else:
            assert [v for _, v in metric] == pytest.approx([result["metric"]])
        card = text_of(run)
        assert result["status"] in card
        assert (result.get("verdict") or result.get("reason") or "")[:40] in card
    session = points(tensorboard_dir(ws, "t") / "session", "val_bpb")
    assert session == [(r["n"], pytest.approx(r["metric"])) for r in done
                       if r.get("metric") is not None]


@pytest.mark.slow
def test_a_session_s_curves_and_results_are_tensorboard_runs(tmp_path, capfd):
    ws = make_workspace(tmp_path / "ws")
    started = Started()
    _, ending = tracked_session(ws, BETTER, CRASH, WORSE, experiments=4, started=started)
    assert ending.code == 0, ending.why
    assert [r["status"] for r in results(ws)] == ["keep", "keep", "crash", "discard"]
    check_exported(ws)
    assert experiment_runs(ws)[2].name == "0002-scripted-change-2"
    assert "beats the best" in text_of(experiment_runs(ws)[2])
    kept = points(tensorboard_dir(ws, "t") / "session", "kept/val_bpb")
    assert [n for n, _ in kept] == [1, 2]
    # the exporter is a process of its own: the loop never calls it
    tracker = started.trackers[0]
    assert tracker is not None and tracker.pid != os.getpid()
    assert tracker.process.returncode == 0  # it ended on its own once the session closed it
    assert "export" not in capfd.readouterr().err  # nothing failed, nothing said


@pytest.mark.slow
def test_cockpit_run_writes_the_event_files(tmp_path):
    """`cockpit run --headless`, the command line itself, starts the exporter."""
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": "[judge]\nbaseline_runs = 1\n"})
    done = cockpit("run", "--headless", "--experiments", "2", "--tag", "t", cwd=ws)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(results(ws)) == 2
    check_exported(ws)
    assert "export" not in done.stderr


@pytest.mark.slow
def test_tensorboard_serves_the_session_offline(tmp_path):
    """`tensorboard --logdir .cockpit/<tag>`, run from the workspace, shows the curves."""
    ws = make_workspace(tmp_path / "ws")
    tracked_session(ws, BETTER, experiments=2)
    port = free_port()
    board = subprocess.Popen([str(Path(sys.executable).with_name("tensorboard")), "--logdir",
                              ".cockpit/t", "--host", "127.0.0.1", "--port", str(port)],
                             cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def get(path: str):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return json.loads(r.read())
            except (OSError, ValueError):
                return None

        runs = wait_for(lambda: get("/data/runs"), timeout=60, what="tensorboard serving")
        assert set(runs) >= {"tensorboard/session", "tensorboard/0001-baseline",
                             "tensorboard/0002-scripted-change-2"}
        curve = wait_for(lambda: get("/data/plugin/scalars/scalars?run=tensorboard/"
                                     "0002-scripted-change-2&tag=train/loss"), timeout=30)
        assert [(step, round(v, 4)) for _, step, v in curve] == [(0, 3.0), (1, 2.9), (2, 2.8)]
        per_n = get("/data/plugin/scalars/scalars?run=tensorboard/session&tag=val_bpb")
        assert [(n, round(v, 6)) for _, n, v in per_n] == [
            (r["n"], round(r["metric"], 6)) for r in results(ws)]
        card = get("/data/plugin/text/text?run=tensorboard/0002-scripted-change-2&tag=result")
        assert "scripted change 2" in card[0]["text"]
    finally:
        board.terminate()
        board.wait(10)


@pytest.mark.slow
def test_a_resumed_session_repeats_no_point(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    tracked_session(ws, BETTER, experiments=2)
    first = {p: p.read_bytes() for p in tensorboard_dir(ws, "t").rglob("*")
             if p.is_file() and "session" not in p.parts}
    tracked_session(ws, WORSE, BETTER.replace("BATCH_SIZE = 16", "BATCH_SIZE = 32"), CRASH,
                    experiments=2)  # the same tag: resumed
    assert len(results(ws)) == 4
    check_exported(ws)  # each point once: the session's run too
    for path, data in first.items():  # what the first start gave stands as it was
        assert path.read_bytes() == data
    assert json.loads(tracked_marker(ws, "t").read_text()) == {"tensorboard": [1, 2, 3, 4]}
    again = subprocess.run([sys.executable, "-m", "cockpit.tracking", str(ws), "t", "--once"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stderr == ""
    check_exported(ws)  # exported again from the journal: still each point once
    for run in experiment_runs(ws).values():
        assert len(list(run.iterdir())) == 1  # one event file each


@pytest.mark.slow
def test_a_tracker_that_cannot_write_never_stops_the_session(tmp_path, capfd):
    ws = make_workspace(tmp_path / "ws")
    tensorboard_dir(ws, "t").parent.mkdir(parents=True)
    tensorboard_dir(ws, "t").write_text("a file where the logdir would be")
    _, ending = tracked_session(ws, BETTER, CRASH, experiments=3)
    assert ending.code == 0, ending.why
    assert [r["status"] for r in results(ws)] == ["keep", "keep", "crash"]
    said = [line for line in capfd.readouterr().err.splitlines() if "export" in line]
    assert len(said) == 1, said
    assert said[0].startswith("cockpit: tensorboard export is off (FileExistsError")
    assert said[0].endswith("the research goes on")


@pytest.mark.slow
def test_a_tracker_that_fails_mid_session_is_said_once(tmp_path, capfd):
    ws = make_workspace(tmp_path / "ws")
    scratch = tensorboard_dir(ws, "t").with_name("tensorboard.partial")
    scratch.parent.mkdir(parents=True)
    scratch.write_text("not a folder: every experiment's run fails to be written")
    _, ending = tracked_session(ws, BETTER, WORSE, experiments=3)
    assert ending.code == 0, ending.why
    assert len(results(ws)) == 3
    said = [line for line in capfd.readouterr().err.splitlines() if "export" in line]
    assert len(said) == 1, said  # three experiments, one line
    assert said[0].startswith("cockpit: TensorBoard export stopped at #1 (")
    assert not tracked_marker(ws, "t").exists()  # nothing counted as given
    scratch.unlink()  # fixed: the next export gives everything
    subprocess.run([sys.executable, "-m", "cockpit.tracking", str(ws), "t", "--once"],
                   check=True, timeout=60)
    check_exported(ws)


@pytest.mark.slow
def test_the_loop_never_waits_for_a_frozen_exporter(tmp_path, capfd):
    """An exporter that makes no progress at all (stopped by a signal) costs the loop
    nothing: the experiments run, the session's end waits `flush` seconds, then stops it;
    the next export gives what it missed."""
    ws = make_workspace(tmp_path / "ws")
    config = TrackingConfig()

    def frozen(since: int):
        tracker = attach(ws, config, "t", since, flush=1.0)
        assert tracker is not None
        os.kill(tracker.pid, signal.SIGSTOP)
        return tracker

    begin = time.monotonic()
    _, ending = tracked_session(ws, BETTER, WORSE, experiments=3, start=frozen)
    took = time.monotonic() - begin
    assert ending.code == 0 and len(results(ws)) == 3
    assert not tracked_marker(ws, "t").exists()  # it gave nothing
    said = [line for line in capfd.readouterr().err.splitlines() if "export" in line]
    assert said == ["cockpit: the tracking export did not finish within 1 s: stopped; what "
                    "is left is exported when the session resumes"]
    assert took < 30, took  # three quick runs and one second's wait, not an exporter's pace
    subprocess.run([sys.executable, "-m", "cockpit.tracking", str(ws), "t", "--once"],
                   check=True, timeout=60)
    check_exported(ws)


@pytest.mark.slow
@pytest.mark.skipif(installed("wandb") or installed("mlflow"),
                    reason="wandb or mlflow is installed: their own tests run")
def test_a_tracker_asked_for_without_its_library_is_one_line(tmp_path, capfd):
    ws = make_workspace(tmp_path / "ws")
    _, ending = tracked_session(ws, BETTER, experiments=2,
                                settings=TrackingConfig(wandb=True, mlflow=True))
    assert ending.code == 0, ending.why
    said = [line for line in capfd.readouterr().err.splitlines() if "export" in line]
    assert said == [
        "cockpit: wandb export is off: the wandb package is not installed (pip install "
        "wandb); the research goes on",
        "cockpit: mlflow export is off: the mlflow package is not installed (pip install "
        "mlflow); the research goes on"]
    check_exported(ws)  # TensorBoard goes on


@pytest.mark.slow
def test_mlflow_runs_hold_each_experiment_s_curve(tmp_path, monkeypatch, capfd):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # this reader's own file store
    from mlflow.tracking import MlflowClient

    ws = make_workspace(tmp_path / "ws")
    tracked_session(ws, BETTER, CRASH, experiments=3,
                    settings=TrackingConfig(tensorboard=False, mlflow=True))
    client = MlflowClient(tracking_uri=(ws / ".cockpit" / "t" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("cockpit t")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["0001-baseline", "0002-scripted-change-2", "0003-scripted-change-3"]
    for result in results(ws):
        run = next(r for name, r in runs.items() if name.startswith(f"{result['n']:04d}"))
        history = client.get_metric_history(run.info.run_id, "train/loss")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            pytest.approx(logged_losses(ws, result))
        assert run.data.params["status"] == result["status"]
        if result.get("metric") is not None:
            assert run.data.metrics["val_bpb"] == pytest.approx(result["metric"])
    assert not tensorboard_dir(ws, "t").exists()  # tensorboard = false: none written
    assert "mlflow" not in capfd.readouterr().err.lower()  # its notices stay off the session's


@pytest.mark.slow
def test_wandb_keeps_offline_runs_in_the_session_folder(tmp_path, monkeypatch, capfd):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    ws = make_workspace(tmp_path / "ws")
    tracked_session(ws, BETTER, experiments=2,
                    settings=TrackingConfig(tensorboard=False, wandb=True))
    offline = sorted((ws / ".cockpit" / "t" / "wandb").glob("offline-run-*"))
    assert [p.name.rsplit("-", 2)[-2:] for p in offline] == [["t", "0001"], ["t", "0002"]]
    # W&B reads its run files in its own (Go) core; its records name what they hold
    record = (offline[1] / "run-t-0002.wandb").read_bytes()
    assert b"train/loss" in record and b"val_bpb" in record and b"scripted change 2" in record
    assert "wandb" not in capfd.readouterr().err.lower()  # its banners stay off the session's
    assert json.loads(tracked_marker(ws, "t").read_text()) == {"wandb": [1, 2]}


# -- the parts, on their own -------------------------------------------------------------------
def test_a_loss_curve_is_read_from_progress_lines_of_any_shape(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"device: cpu\n"
                    b"\rstep 00000 (0.0%) | loss: 9.000000 | remaining: 3s"
                    b"\rstep 00001 (10.0%) | loss: nan | remaining: 3s"
                    b"\rstep 00002 (20.0%) | loss: 7.000000 | remaining: 2s"
                    b"\rstep 00002 (20.0%) | loss: 6.500000 | remaining: 2s\n"
                    b"---\nval_bpb: 1.0\n")
    assert loss_points(log) == [(0, 9.0), (2, 6.5)]  # NaN left out, a step's last said
    unnumbered = tmp_path / "plain.log"
    unnumbered.write_text("(10%) loss: 4.0\n(20%) loss: 3.0\n")
    assert loss_points(unnumbered) == [(0, 4.0), (1, 3.0)]
    assert loss_points(tmp_path / "missing.log") == []
    flood = tmp_path / "flood.log"
    flood.write_text("".join(f"\rstep {i} ({i / 300:.2f}%) | loss: {i}.0"
                             for i in range(3 * MAX_POINTS + 1)))
    thinned = loss_points(flood)
    assert len(thinned) <= MAX_POINTS + 1
    assert thinned[0] == (0, 0.0) and thinned[-1] == (3 * MAX_POINTS, 3 * MAX_POINTS)


def test_the_marker_survives_a_torn_write(tmp_path):
    path = tmp_path / "tracked.json"
    path.write_text('{"tensorboard": [1, 2')  # torn by a kill
    marker = Marker(path)
    assert not marker.has("tensorboard", 1)  # given again: a run is replaced whole
    marker.add("tensorboard", 1)
    assert Marker(path).has("tensorboard", 1)
    assert json.loads(path.read_text()) == {"tensorboard": [1]}


def test_doctor_says_where_the_curves_go_and_what_is_missing():
    found = checks.check(TrackingConfig())
    assert found[0].level == OK and "tensorboard --logdir .cockpit/<tag>" in found[0].text
    off = checks.check(TrackingConfig(tensorboard=False))
    assert off[0].text.startswith("TensorBoard export off")
    asked = checks.check(TrackingConfig(wandb=True, mlflow=True))[1:]
    for finding, key in zip(asked, ("wandb", "mlflow")):
        if installed(key):
            assert finding.level == OK
        else:
            assert finding.level == FIX and finding.text.endswith(f"pip install {key}")


def test_tracking_settings_are_checked_in_one_line(tmp_path):
    (tmp_path / "cockpit.toml").write_text('[tracking]\nwandb_mode = "cloud"\n')
    with pytest.raises(ConfigError, match=r"\[tracking\] wandb_mode = 'cloud' is not allowed; "
                                          "use one of: offline, online"):
        load_config(tmp_path)
    (tmp_path / "cockpit.toml").write_text('[tracking]\ntensorboard = "yes"\n')
    with pytest.raises(ConfigError, match="must be true, false or \"auto\""):
        load_config(tmp_path)
    (tmp_path / "cockpit.toml").write_text('[tracking]\nmlflow = true\nmlflow_uri = '
                                           '"http://me:pw@host:5000"\n')
    config = load_config(tmp_path)
    assert config.tracking.mlflow and "pw" not in json.dumps(config.to_dict())
