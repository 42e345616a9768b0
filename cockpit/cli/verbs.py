"""The CLI verbs that talk to a running session: status, pause, resume, stop, steer, notes,
approve, reject, branch. Each exits 0 when the session took the command, and says in one line why
not otherwise (exit 2); `status` exits 1 when no session runs."""
from __future__ import annotations

import json
import time

from cockpit.cli.args import workspace_of
from cockpit.client.connection import NoSession, request
from cockpit.domain.errors import CockpitError
from cockpit.domain.exits import EXIT_FOUND, EXIT_OK
from cockpit.domain.measured import floor_kind, measured_label, runs_label

VERBS = ("status", "pause", "resume", "stop", "steer", "notes", "approve", "reject", "branch")


class Refused(CockpitError):
    """The session did not take the command (one line: why)."""


def add_verbs(sub) -> None:
    status = sub.add_parser("status", help="what the running session does now (exit 1 when "
                            "no session runs)")
    status.add_argument("--json", action="store_true", help="the full state as JSON")
    sub.add_parser("pause", help="no new run starts; the runs in flight finish")
    sub.add_parser("resume", help="go on after a pause")
    stop = sub.add_parser("stop", help="end the session after the runs in flight")
    stop.add_argument("--now", action="store_true",
                      help="end the runs in flight now (recorded as stopped by the human)")
    steer = sub.add_parser("steer", help="add a steering note for the next proposals")
    steer.add_argument("text", nargs="+")
    notes = sub.add_parser("notes", help="list the steering notes, or drop one")
    notes.add_argument("--drop", type=int, metavar="ID", help="drop note ID")
    approve = sub.add_parser("approve", help="run a proposal that awaits approval")
    approve.add_argument("n", nargs="?", type=int, help="its number (default: the only one)")
    reject = sub.add_parser("reject", help="reject a proposal that awaits approval")
    reject.add_argument("n", nargs="?", type=int, help="its number (default: the only one)")
    reject.add_argument("--reason", default="", help="why (the agent reads it)")
    branch = sub.add_parser("branch", help="a new line of research from experiment N: its "
                            "next proposals build on N's commit (autoresearch/<tag>-K)")
    branch.add_argument("n", type=int, help="the experiment to build on (kept or discarded)")


def run_verb(args) -> int:
    workspace = workspace_of(args)
    try:
        if args.command == "status":
            return _status(workspace, args.json)
        answer = _ask(workspace, args)
    except NoSession as exc:
        if args.command == "status":
            print(f"cockpit: {exc}")
            return EXIT_FOUND
        raise
    if not answer.get("ok"):
        raise Refused(answer.get("message", "refused"))
    print(answer.get("message", "done"))
    return EXIT_OK


def _ask(workspace, args) -> dict:
    verb = args.command
    if verb == "steer":
        return request(workspace, "steer", text=" ".join(args.text))
    if verb == "notes":
        if args.drop is not None:
            return request(workspace, "drop_note", id=args.drop)
        live = request(workspace, "status")["live"]
        notes = live.get("notes") or []
        lines = [f"{note['id']:>3}  {note['text']}" for note in notes]
        return {"ok": True, "message": "\n".join(lines) if lines else "no steering notes"}
    if verb == "stop":
        return request(workspace, "stop", now=args.now)
    if verb == "branch":
        return request(workspace, "branch", n=args.n)
    if verb in ("approve", "reject"):
        n = args.n if args.n is not None else _the_only_one(workspace, verb)
        if verb == "approve":
            return request(workspace, "approve", n=n)
        return request(workspace, "reject", n=n, reason=args.reason)
    return request(workspace, verb)


def _the_only_one(workspace, verb: str) -> int:
    waiting = request(workspace, "status")["live"]["awaiting"]
    if not waiting:
        raise Refused("no proposal awaits approval")
    if len(waiting) > 1:
        raise Refused(f"{len(waiting)} proposals await approval ("
                      + ", ".join(f"#{n}" for n in waiting) + f"): name one, e.g. "
                      f"`cockpit {verb} {waiting[0]}`")
    return waiting[0]


def _status(workspace, as_json: bool) -> int:
    answer = request(workspace, "status")
    if as_json:
        print(json.dumps({k: answer[k] for k in ("live", "status")}, indent=2))
        return EXIT_OK
    print(describe_status(answer["live"], answer["status"]))
    return EXIT_OK


def describe_status(live: dict, status: dict) -> str:
    """The session in a few lines, for a human at a terminal."""
    lines = [f"session {status['tag']} on {status['branch']}"]
    state = "paused" if live["paused"] else ("stopping" if live["stopping"] else "running")
    if live["paused"]:
        state += f" ({live['pause_reason']})"
    doing = []
    for run in live["running"]:
        what = f"#{run['n']}" if run["kind"] == "experiment" else \
            f"{run['purpose']} re-run of {run['commit'][:7]}"
        where = f" on gpu{run['worker']}" if live["workers"] > 1 else ""
        progress = f", {run['percent']:.0f}%" if run.get("percent") is not None else ""
        clock = time.strftime("%M:%S", time.gmtime(run["elapsed"]))
        doing.append(f"{what}{where} ({clock} of {_clock(status['budget'])}{progress})")
    lines.append(f"state: {state}; " + ("training " + ", ".join(doing) if doing else "no run "
                                        "in flight"))
    if live["awaiting"]:
        lines.append("awaiting approval: " + ", ".join(f"#{n}" for n in live["awaiting"])
                     + " (`cockpit approve N` / `cockpit reject N`)")
    metric = status["metric"]
    if status["best"] is not None:
        how = measured_label(status.get("best_measured", ""))
        best = f"best {metric} {status['best']:.6f} (#{status['best_n']}, " + (
            f"{runs_label(status.get('best_runs', 1))}" + (f", {how})" if how else ")"))
        if status["baseline"] is not None:
            delta = status["best"] - status["baseline"]
            pct = 100 * delta / status["baseline"] if status["baseline"] else 0.0
            best += (f", baseline {status['baseline']:.6f} "
                     f"({runs_label(status.get('baseline_runs', 1))}), "
                     f"{delta:+.6f} ({pct:+.1f}%)")
        lines.append(best)
    noise = (f"noise ±{status['noise']:.4f} ({status['noise_runs']} runs)"
             if status["noise"] is not None else "no noise floor yet")
    kind = floor_kind(status.get("seeds"))
    if kind and status["noise"] is not None:
        noise += f" from {kind}"
    if len(status.get("lines") or []) > 1:
        lines.append("lines: " + "; ".join(_line_words(line, metric)
                                           for line in status["lines"]))
    lines.append(f"{status['experiments']} experiments, {status['kept']} kept, "
                 f"{status['crashed']} crashed; {noise}")
    if status.get("measuring"):
        lines.append(f"results: {status['measuring']}")
    lines.append(f"workers: {live['workers']}; agent: {live['agent']}; "
                 f"auto-approve {'on' if live['auto_approve'] else 'off'}; "
                 f"cost ${live['cost_usd']:.4f}")
    return "\n".join(lines)


def _line_words(line: dict, metric: str) -> str:
    """`1 (autoresearch/t-1, from #4, best #9 1.012345)`, and `left` for one the session
    left on a plateau."""
    words = [line["branch"]]
    if line.get("from_n") is not None:
        words.append(f"from #{line['from_n']}")
    if line.get("best") is not None:
        words.append(f"best #{line['best_n']} {metric} {line['best']:.6f}")
    if not line.get("open", True):
        words.append("left")
    return f"{line['line']} ({', '.join(words)})"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
