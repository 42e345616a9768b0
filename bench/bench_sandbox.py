"""The cost of what holds a run, side by side in one run.

  1. start-up: seconds of a trivial command (`true`, then `python -c pass`) through the
     runner: bare (no sandbox, no reaper), held by the reaper (the sandbox off), in the
     sandbox without concealing the checkout, and in the sandbox a session builds (the
     checkout and runtime dirs concealed, the linked paths shown again); target: < 0.3 s
     extra;
  2. compute: a CPU-bound workload's throughput inside vs outside (target: < 2 % slower):
     pure-Python arithmetic and a one-thread torch matmul loop, each for a fixed time;
  3. with --train SECONDS: train.py's tokens/s on the prepared data, inside vs outside.

Runs alternate, each round in a rotated order, so a busy machine weighs on all alike;
figures are medians.

    python bench/bench_sandbox.py [--runs 10] [--train 20]
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cockpit.runners.local as local
from cockpit.runners.environment import training_env
from cockpit.runners.local import LocalRunner
from cockpit.runners.outcome import parse_summary
from cockpit.runners.sandbox import SandboxPolicy, available
from cockpit.session.sandboxing import policy_for
from cockpit.workspace.config import Config
from cockpit.workspace.logs import read_head, read_tail

PYTHON_WORK = """\
import time
n, end = 0, time.perf_counter() + {seconds}
while time.perf_counter() < end:
    for i in range(10000):
        n += i * i % 7
    n += 1
print("---\\nrate:", n / {seconds})
"""
TORCH_WORK = """\
import time, torch
torch.set_num_threads(1)  # one thread: on a shared machine, a waiting OpenMP team is noise
torch.manual_seed(0)
a, b = torch.randn(512, 512), torch.randn(512, 512)
a @ b
n, end = 0, time.perf_counter() + {seconds}
while time.perf_counter() < end:
    a @ b
    n += 1
print("---\\nrate:", n * 2 * 512**3 / {seconds})
"""


def run(command: str, workdir: Path, sandbox: SandboxPolicy | None,
        env: dict[str, str] | None = None, held: bool = True) -> tuple[float, dict]:
    """One run through the runner: its wall seconds and its summary block (with the
    tokens per step train.py prints before training, when it does). held=False: without
    the reaper (what a run without the sandbox cost before there was one)."""
    log = workdir.parent / "bench.log"
    reaper = local.reaper_available
    if not held:
        local.reaper_available = lambda: False
    started = time.perf_counter()
    try:
        result = LocalRunner().run(command, cwd=workdir, log_path=log, timeout=600,
                                   env=env or training_env(), sandbox=sandbox)
    finally:
        local.reaper_available = reaper
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"`{command}` failed ({result.returncode}): {read_tail(log)[-800:]}")
    summary = parse_summary(read_tail(log))
    per_step = re.search(r"tokens/step: ([\d,]+)", read_head(log))
    if per_step:
        summary["tokens_per_step"] = float(per_step.group(1).replace(",", ""))
    return seconds, summary


def side_by_side(runs: int, measure, variants=(False, True)) -> list[float]:
    """Medians of measure(variant) over rounds, one per variant each round, the order
    rotated every round, so none always follows another."""
    results: dict = {v: [] for v in variants}
    for i in range(runs):
        k = i % len(variants)
        for variant in variants[k:] + variants[:k]:
            results[variant].append(measure(variant))
    return [statistics.median(results[v]) for v in variants]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="runs of each start-up measure")
    ap.add_argument("--work-runs", type=int, default=6, help="runs of each compute measure")
    ap.add_argument("--seconds", type=float, default=2.0, help="length of a compute run")
    ap.add_argument("--train", type=int, default=0, help="train.py budget in seconds (0: skip)")
    args = ap.parse_args()

    ok, why = available()
    print(f"sandbox: {why}")
    if not ok:
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    try:
        workspace = root / "ws"  # as a session lays it out: the run in a worktree inside
        workdir = workspace / ".cockpit" / "b" / "worktrees" / "w0"
        workdir.mkdir(parents=True)
        (workspace / ".venv").mkdir()
        (workdir / ".venv").symlink_to(workspace / ".venv")
        policy = policy_for(Config(), workspace, workdir, None, shared=[".venv"])
        plain = SandboxPolicy.for_run(workdir)  # no concealment: the sandbox before it
        pick = {False: None, True: policy}
        starts = {"bare": (None, False), "held": (None, True), "sandbox, plain": (plain, True),
                  "sandbox": (policy, True)}

        print(f"\nstart-up through the runner (median of {args.runs}):")
        print(f"{'command':<16}" + "".join(f"{name:>16}" for name in starts))
        for command in ("true", "python -c pass"):
            times = side_by_side(args.runs,
                                 lambda v, command=command: run(command, workdir, starts[v][0],
                                                                held=starts[v][1])[0],
                                 tuple(starts))
            bare = times[0]
            print(f"{command:<16}" + "".join(
                f"{t:9.3f}s{t - bare:+6.3f}" if name != "bare" else f"{t:15.3f}s"
                for name, t in zip(starts, times)))
        print("(each figure: seconds, then the extra over bare)")

        print(f"\ncompute throughput ({args.seconds:g} s runs, median of {args.work_runs}):")
        print(f"{'workload':<18} {'outside':>12} {'inside':>12} {'inside/outside':>15}")
        workloads = [("python loop", PYTHON_WORK, "ops/s")]
        try:
            import torch  # noqa: F401

            workloads.append(("torch matmul", TORCH_WORK, "FLOP/s"))
        except ImportError:
            print("(torch is not installed: no matmul workload)")
        for name, code, unit in workloads:
            script = workdir / f"{name.replace(' ', '_')}.py"
            script.write_text(code.format(seconds=args.seconds))
            command = f"python {script.name}"
            out, ins = side_by_side(
                args.work_runs,
                lambda s, command=command: run(command, workdir, pick[s])[1]["rate"])
            print(f"{name:<18} {out:12.4g} {ins:12.4g} {ins / out:14.3f}  "
                  f"({unit}; {(ins / out - 1) * 100:+.1f}% inside)")

        if args.train:
            train_side_by_side(workdir, args.train)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def train_side_by_side(workdir: Path, budget: int) -> None:
    """train.py's tokens/s on the prepared data, one run outside then one inside."""
    import prepare

    data = prepare.get_data_dir()
    if prepare.data_fingerprint() is None:
        print(f"\nno prepared data in {data}: run `python prepare.py` for the train.py figure")
        return
    for name in ("train.py", "prepare.py"):
        shutil.copy(ROOT / name, workdir / name)
    policy = SandboxPolicy.for_run(workdir, data_dir=data)
    env = training_env({"COCKPIT_TIME_BUDGET": str(budget), "COCKPIT_DATA_DIR": str(data)})
    rates = []
    for sandbox in (None, policy):
        _, summary = run("python train.py", workdir, sandbox, env)
        steps = summary["num_steps"] * summary["tokens_per_step"]
        rates.append(steps / summary["training_seconds"])
    print(f"\ntrain.py ({budget} s budget): tokens/s outside {rates[0]:,.0f}, inside "
          f"{rates[1]:,.0f}, inside/outside {rates[1] / rates[0]:.3f}")


if __name__ == "__main__":
    sys.exit(main())
