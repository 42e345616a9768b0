"""
The evaluation cockpit runs itself (fixed: the agent never edits this). train.py trains;
this file measures.

    hand_over(model)                 # train.py's last call: the trained model, as an artifact
    python evaluate.py ARTIFACT      # measure it: val_bpb on the pinned validation split
    python evaluate.py --check       # is the evaluator ready (data, val split)? one line

The artifact is a `torch.export` program of `model(idx) -> logits`: idx int64 of shape
(EVAL_BATCH, MAX_SEQ_LEN), logits float of shape (EVAL_BATCH, MAX_SEQ_LEN, >= vocab size).
Under cockpit it goes where $COCKPIT_ARTIFACT says; run by hand (no $COCKPIT_ARTIFACT),
hand_over measures it at once and returns val_bpb.

Measuring runs none of the run's Python. The archive is checked before torch reads it:
only tensors and a graph of ATen operators (no pickle, no custom object, no symbolic
shape, no operator that reads files or memory or draws random numbers, no state kept
between calls), at most MAX_ARTIFACT_MB. Then:
  1. the interface: one call on a batch gives logits of the right shape, finite;
  2. a causality probe on real validation rows: changing the tokens after a prefix (at
     every prefix length) must leave the prefix's logits unchanged (up to a constant), and
     a row's must not depend on the other rows of its batch (their order or their tokens);
  3. the metric, from the logits with this file's code: the model never sees the targets.
      bpb = sum of nats over target tokens / (ln 2 * sum of their UTF-8 bytes)
Anything wrong prints one `error: ...` line and exits 3; a measurement prints a summary
block (`---`, then `val_bpb: ...`).
"""

import io
import json
import math
import os
import re
import sys
import time
import warnings
import zipfile
from pathlib import Path

from prepare import EVAL_TOKENS, MAX_SEQ_LEN, Tokenizer, _eval_rows, _load_tokens, get_data_dir

# ---------------------------------------------------------------------------
# Constants (fixed: changing them changes the benchmark)

EVAL_BATCH = 16  # rows per call of the artifact (its input shape is static)
MAX_ARTIFACT_MB = 8192  # a larger artifact (or one that unpacks larger) is refused
MAX_GRAPH_MB = 256  # the graph's JSON, at most
PROBE_TOLERANCE = 1e-3  # a prefix's logits may move this much (less their max), no more
PROBE_FLOOR = -100.0  # logits this far below their max are compared as this (no target is there)
ARTIFACT_ENV = "COCKPIT_ARTIFACT"  # where cockpit wants the artifact
EXIT_REFUSED = 3  # the artifact is missing, broken or breaks the rules

# What a graph may call: ATen and prims operators, and tuple indexing. Never these, which
# read files or memory the model was not given, or print, or draw random numbers or read
# uninitialized memory (a model that differs from call to call could pass the probe by luck).
ALLOWED_TARGET = re.compile(r"^torch\.ops\.(aten|prims)\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
DENIED_OPS = ("from_file", "_print", "set_", ".set.", "storage", "_unsafe", "record_stream",
              "rand", "bernoulli", "multinomial", "normal", "uniform", "exponential", "geometric",
              "cauchy", "poisson", "_standard_gamma", "dropout", "rrelu", "philox", "empty")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$")
ARCHIVE_MEMBER = re.compile(
    r"^[A-Za-z0-9_.-]{1,64}/(models/model\.json|data/weights/(weight_\d+|model_weights_config\.json)"
    r"|data/constants/(tensor_\d+|model_constants_config\.json)|data/sample_inputs/model\.pt"
    r"|archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id)$")
SKIPPED_MEMBER = "data/sample_inputs/model.pt"  # a pickle torch writes: emptied unread


class Refused(Exception):
    """The artifact cannot be measured: one line that says why."""


# ---------------------------------------------------------------------------
# Handing over (in the training process)


def hand_over(model, path=None):
    """Export `model` (idx -> logits) for cockpit to measure. Under cockpit, writes the
    artifact where $COCKPIT_ARTIFACT says and returns None; by hand, writes model.pt2 and
    returns its val_bpb, measured by this file."""
    import torch

    target = Path(path or os.environ.get(ARTIFACT_ENV) or "model.pt2")
    t0 = time.time()
    model.eval()
    try:
        device = next(model.parameters()).device
    except (AttributeError, StopIteration):
        device = torch.device("cpu")
    example = torch.zeros((EVAL_BATCH, MAX_SEQ_LEN), dtype=torch.int64, device=device)
    with torch.no_grad():
        program = torch.export.export(model, (example,))
    partial = target.with_name(target.stem + ".partial" + target.suffix)  # torch wants .pt2
    torch.export.save(program, str(partial))
    os.replace(partial, target)
    print(f"artifact: {target} ({target.stat().st_size / 1e6:.1f} MB, exported in "
          f"{time.time() - t0:.1f}s)", flush=True)
    if os.environ.get(ARTIFACT_ENV):
        return None
    return measure(target)["val_bpb"]


# ---------------------------------------------------------------------------
# Reading an artifact without running anything of the run's


def check_archive(path):
    """The artifact's bytes, rebuilt from only what may be read (metadata stripped), or
    Refused. Nothing here runs torch's loader."""
    path = Path(path)
    if not path.is_file():
        raise Refused(f"no artifact at {path}: train.py must end with hand_over(model) "
                      "(from evaluate import hand_over)")
    size = path.stat().st_size
    if size > MAX_ARTIFACT_MB * 1e6:
        raise Refused(f"the artifact is {size / 1e6:.0f} MB, over the {MAX_ARTIFACT_MB} MB limit")
    try:
        archive = zipfile.ZipFile(path)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise Refused(f"the artifact is not a torch.export archive ({type(e).__name__}); "
                      "save it with hand_over(model)") from None
    if sum(m.file_size for m in members) > MAX_ARTIFACT_MB * 1e6:
        raise Refused(f"the artifact unpacks to over {MAX_ARTIFACT_MB} MB")
    kept = {}
    for m in members:
        if not ARCHIVE_MEMBER.match(m.filename):
            raise Refused(f"the artifact holds {m.filename[:80]!r}, which is not a tensor or "
                          "the graph: only hand_over's export is measured")
        kept[m.filename] = m
    roots = {name.split("/", 1)[0] for name in kept}
    if len(roots) != 1:
        raise Refused("the artifact holds more than one program")
    root = roots.pop()

    def read(name, limit=MAX_ARTIFACT_MB):
        info = kept.get(f"{root}/{name}")
        if info is None:
            raise Refused(f"the artifact has no {name}: save it with hand_over(model)")
        if info.file_size > limit * 1e6:
            raise Refused(f"the artifact's {name} is over {limit} MB")
        return archive.read(info)

    try:
        graph = json.loads(read("models/model.json", MAX_GRAPH_MB))
        configs = [json.loads(read(f"data/{kind}/model_{kind}_config.json", 16))
                   for kind in ("weights", "constants")]
    except RecursionError:
        raise Refused("the artifact's graph is nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused(f"the artifact's graph is not valid JSON ({str(e)[:80]})") from None
    for config in configs:
        for fqn, payload in (config.get("config") or {}).items():
            if not isinstance(payload, dict) or payload.get("use_pickle") \
                    or not re.match(r"^(weight|tensor)_\d+$", str(payload.get("path_name"))):
                raise Refused(f"the artifact stores {str(fqn)[:60]!r} as a pickle or an "
                              "object: only plain tensors are read")
    _check_graph(graph)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as clean:
        for name, info in kept.items():
            if name == f"{root}/models/model.json":
                data = json.dumps(graph).encode()
            elif name.endswith(SKIPPED_MEMBER):
                data = b""  # read as "no sample inputs"
            else:
                data = archive.read(info)
            clean.writestr(name, data)
    out.seek(0)
    return out


def _check_graph(graph):
    """Refuse a graph that could run anything but tensor operators when torch reads it:
    a target outside ATen, symbolic shapes (their expressions are parsed as code), custom
    objects, guards. Node metadata (stack traces, module paths) is dropped unread."""
    if not isinstance(graph, dict) or not isinstance(graph.get("graph_module"), dict):
        raise Refused("the artifact's graph is not a torch.export program")
    if graph.get("range_constraints") or graph.get("guards_code"):
        raise Refused("the artifact has symbolic shapes or guards: hand_over exports "
                      "static shapes only")
    module = graph["graph_module"]
    body = module.get("graph")
    if not isinstance(body, dict) or not isinstance(body.get("nodes"), list):
        raise Refused("the artifact's graph has no nodes")
    for key in ("sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values"):
        if body.get(key):
            raise Refused(f"the artifact's graph has {key.replace('_', ' ')}: hand_over "
                          "exports plain tensors with static shapes")
    module["metadata"] = {}
    for node in body["nodes"]:
        if not isinstance(node, dict):
            raise Refused("the artifact's graph has a malformed node")
        target = node.get("target")
        if not isinstance(target, str) or not (
                target == "_operator.getitem" or ALLOWED_TARGET.match(target)) \
                or any(word in target for word in DENIED_OPS):
            raise Refused(f"the artifact calls {str(target)[:80]!r}: the evaluator runs "
                          "ATen operators only")
        node["metadata"] = {}
    for text in _strings(graph):
        if "expr_str" == text or "__" in text and not NAME.match(text.replace("__", "_")):
            raise Refused("the artifact's graph holds an expression: hand_over exports "
                          "static shapes only")
    names = [n.get("name") for n in body["nodes"]]
    if not all(isinstance(n, str) and NAME.match(n) for n in names):
        raise Refused("the artifact's graph has a node whose name is not an identifier")


def _strings(value, depth=0):
    """Every string in a JSON value, its keys included."""
    if depth > 64:
        raise Refused("the artifact's graph is nested too deeply to read")
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, depth + 1)


def load(path):
    """The artifact as a callable module, or Refused. torch's own loader reads the checked
    archive with pickle refused outright (it would run code)."""
    import pickle

    import torch
    from torch.export.graph_signature import OutputKind

    clean = check_archive(path)

    def refuse(*args, **kwargs):
        raise Refused("the artifact holds a pickle: only plain tensors are read")

    saved = (torch.load, pickle.loads, pickle.load, torch._C._pickle_load_obj)
    torch.load, pickle.loads, pickle.load, torch._C._pickle_load_obj = refuse, refuse, refuse, refuse
    try:
        program = torch.export.load(clean)
        with warnings.catch_warnings():  # torch's own deprecation notices
            warnings.simplefilter("ignore", FutureWarning)
            program = program.run_decompositions({})  # functional: a buffer written is an output
    except Refused:
        raise
    except RecursionError:
        raise Refused("the artifact's graph is nested too deeply to read") from None
    except Exception as e:
        raise Refused(f"the artifact does not load: {type(e).__name__}: "
                      f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}") from None
    finally:
        torch.load, pickle.loads, pickle.load, torch._C._pickle_load_obj = saved
    if any(spec.kind != OutputKind.USER_OUTPUT for spec in program.graph_signature.output_specs):
        raise Refused("the artifact writes to its buffers or its input: a model keeps no state "
                      "between calls")
    for node in program.graph.nodes:
        if node.op == "call_function":
            target = node.target
            name = f"torch.ops.{getattr(target, 'namespace', '?')}.{getattr(target, '__name__', '?')}"
            if isinstance(target, torch._ops.OpOverload) and target.namespace in ("aten", "prims"):
                schema = target._schema
                args = {**dict(zip((a.name for a in schema.arguments), node.args)), **node.kwargs}
                if schema.is_mutable or any(word in name for word in DENIED_OPS) \
                        or args.get("dropout_p") \
                        or any("Generator" in str(a.type) for a in schema.arguments):
                    raise Refused(f"the artifact calls {name}: the evaluator runs ATen operators "
                                  "that compute the same logits on every call only")
            elif target.__module__ != "_operator":
                raise Refused(f"the artifact calls {name}: the evaluator runs ATen operators only")
        elif node.op not in ("placeholder", "output", "get_attr"):
            raise Refused(f"the artifact's graph has a {node.op!r} node")
    return program.module()


# ---------------------------------------------------------------------------
# Measuring


def _call(model, x, vocab_size):
    """logits (float32) of one batch, or Refused when the interface is wrong."""
    import torch

    try:
        out = model(x)
    except Exception as e:
        raise Refused(f"the artifact fails on a batch of shape {tuple(x.shape)}: "
                      f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or tuple(out.shape[:2]) != tuple(x.shape) \
            or out.shape[2] < vocab_size or not out.is_floating_point():
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise Refused(f"the artifact returns {shape}: it must return logits of shape "
                      f"({x.shape[0]}, {x.shape[1]}, >= {vocab_size})")
    if not all(math.isfinite(m.item()) for m in torch.aminmax(out)):  # nan propagates
        raise Refused("the artifact's logits are not finite (nan or inf) on a batch of "
                      "validation rows")
    return out.float()


def _probe(model, rows, vocab_size):
    """Other rows (their order, their tokens) must not move a row's logits; later tokens
    must not move earlier ones, at any prefix length. The logits less their max, as the
    softmax reads them: a constant added to all of them moves neither the metric nor this."""
    import torch

    def centered(x):  # within PROBE_TOLERANCE here: log-probabilities within twice that
        logits = _call(model, x, vocab_size)
        return (logits - logits.amax(-1, keepdim=True)).clamp(min=PROBE_FLOOR)

    B, T = rows.shape
    with torch.no_grad():
        base = centered(rows)
        half = torch.arange(B, device=rows.device) % 2 == 0
        for mixed, kept in ((rows.roll(1, dims=0), None),  # the same rows in another order
                            (torch.where(half[:, None], rows, rows.flip(0)), half),  # others
                            (torch.where(half[:, None], rows.flip(0), rows), ~half)):  # replaced
            out = centered(mixed)
            moved = (out.roll(-1, dims=0) - base) if kept is None else (out - base)[kept]
            if not moved.abs().max().item() <= PROBE_TOLERANCE:
                raise Refused(f"the batch probe failed: other rows of the batch moved a row's "
                              f"logits by {moved.abs().max().item():.3g}")
        # rows are independent: each row of a batch probes its own prefix length
        other = rows.roll(1, dims=0)  # another real row's tokens, each one changed
        other = torch.where(other != rows, other, (rows + 1) % vocab_size)
        position = torch.arange(T, device=rows.device)
        for p0 in range(1, T, B):  # row i keeps its first p0 + i tokens: every prefix once
            prefix = (p0 + torch.arange(B, device=rows.device)).clamp(max=T - 1)
            keep = position[None, :] < prefix[:, None]
            changed = centered(torch.where(keep, rows, other))
            moved = ((changed - base).abs().amax(-1) * keep).amax(-1)
            worst = int(moved.argmax())
            if not moved[worst].item() <= PROBE_TOLERANCE:
                raise Refused(f"the causality probe failed: changing the tokens from position "
                              f"{int(prefix[worst])} on moved the logits before it by "
                              f"{moved[worst].item():.3g} (the model sees the future)")


def measure(path, data_dir=None):
    """Measure the artifact at `path`: {'val_bpb', 'eval_seconds', ...}, or Refused."""
    import numpy as np
    import torch

    t0 = time.time()
    data_dir = Path(data_dir) if data_dir is not None else get_data_dir()
    tokenizer = Tokenizer.from_directory(data_dir)
    vocab_size = tokenizer.get_vocab_size()
    val = _load_tokens(data_dir, "val")[0]
    rows, T = _eval_rows(val)
    if T != MAX_SEQ_LEN:
        raise Refused(f"the validation split holds {len(val)} tokens, fewer than a row of "
                      f"{MAX_SEQ_LEN}: prepare more data")
    model = load(path)
    device = "cpu"
    for buf in list(model.parameters()) + list(model.buffers()):
        device = buf.device
        break
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Refused("the artifact was exported on a GPU and this machine has none")
    tokens = torch.from_numpy(np.asarray(val[:rows * T + 1]).astype(np.int64))
    x_all, y_all = tokens[:-1].view(rows, T), tokens[1:].view(rows, T)
    pad = (-rows) % EVAL_BATCH  # a short last batch is filled with rows from the start

    def batch(r0):
        idx = [(r0 + i) % rows for i in range(EVAL_BATCH)]
        return x_all[idx].to(device), y_all[idx].to(device)

    _probe(model, batch(0)[0], vocab_size)
    t_probe = time.time()
    token_bytes = torch.from_numpy(tokenizer.token_bytes()).to(device).long()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" \
        else torch.autocast("cpu", enabled=False)
    total_nats, total_bytes = 0.0, 0
    with torch.no_grad():
        for r0 in range(0, rows + pad, EVAL_BATCH):
            x, y = batch(r0)
            with autocast:
                logits = _call(model, x, vocab_size)
            keep = min(EVAL_BATCH, rows - r0)  # the filled rows are not scored twice
            logp = torch.log_softmax(logits[:keep], dim=-1)
            nats = -logp.gather(-1, y[:keep, :, None]).squeeze(-1).double()
            nbytes = token_bytes[y[:keep]]
            total_nats += torch.where(nbytes > 0, nats, torch.zeros_like(nats)).sum().item()
            total_bytes += int(nbytes.sum().item())
    if total_bytes == 0:
        raise Refused("the validation targets hold no bytes")
    val_bpb = total_nats / (math.log(2) * total_bytes)
    if not math.isfinite(val_bpb):
        raise Refused(f"the measured val_bpb is {val_bpb} (the model's logits are not finite)")
    return {"val_bpb": val_bpb, "eval_tokens": rows * T, "probe_seconds": t_probe - t0,
            "eval_seconds": time.time() - t0}


def check(data_dir=None):
    """One line: whether this machine can measure (the data and its val split are there)."""
    data_dir = Path(data_dir) if data_dir is not None else get_data_dir()
    import torch  # noqa: F401 (the measurement needs it)

    val = _load_tokens(data_dir, "val")[0]
    rows, T = _eval_rows(val)
    return (f"evaluator ready: {rows * T:,} validation tokens of {EVAL_TOKENS:,} in rows of "
            f"{T}, data in {data_dir}")


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--check"]:
        try:
            print(check())
        except SystemExit as e:
            print(f"error: {e}")
            return EXIT_REFUSED
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python evaluate.py ARTIFACT | --check", file=sys.stderr)
        return 2
    try:
        result = measure(args[0])
    except Refused as e:
        print(f"error: {e}", flush=True)
        return EXIT_REFUSED
    except SystemExit as e:  # prepare's one-line errors (no data)
        print(f"error: {e}", flush=True)
        return EXIT_REFUSED
    except MemoryError:
        print("error: the artifact did not fit in memory", flush=True)
        return EXIT_REFUSED
    print("---")
    print(f"val_bpb:          {result['val_bpb']:.6f}")
    print(f"eval_tokens:      {result['eval_tokens']}")
    print(f"probe_seconds:    {result['probe_seconds']:.1f}")
    print(f"eval_seconds:     {result['eval_seconds']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
