"""evaluate.py: the archive check, the probes and the metric, each against a model or an
archive built to break exactly one rule (and an honest model, measured the same way as
prepare.evaluate_bpb would)."""
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import REPO_ROOT

import evaluate
import prepare
from evaluate import EVAL_BATCH, MAX_SEQ_LEN, Refused

DIM, HEADS = 8, 2


@pytest.fixture(scope="module")
def vocab(small_data_dir):
    return prepare.Tokenizer.from_directory(small_data_dir).get_vocab_size()


# ---------------------------------------------------------------------------
# Tiny models: embedding, one attention layer, linear head; each variant breaks one rule


class TinyLM(nn.Module):
    def __init__(self, vocab, causal=True, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.vocab, self.causal = vocab, causal
        self.wte = nn.Embedding(vocab, DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.head = nn.Linear(DIM, vocab)

    def logits(self, idx):
        x = self.wte(idx)
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, HEADS, C // HEADS).transpose(1, 3).unbind(2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.head(x + y.transpose(1, 2).reshape(B, T, C))

    def forward(self, idx):
        return self.logits(idx)

    def leak(self, idx):
        """+30 on the true next token of each position (the future)."""
        nxt = torch.cat([idx[:, 1:], idx[:, :1]], dim=1)
        return F.one_hot(nxt, self.vocab).float() * 30.0


class PerToken(nn.Module):
    """prepare.evaluate_bpb's interface: model(x, y, reduction='none') -> nats per token."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, reduction="mean"):
        logits = self.model(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction=reduction)


class HonestVariant(TinyLM):
    """Measured as TinyLM: in-place ops on its own tensors, and a constant added to each
    position's logits (one that depends on the next token: the softmax never sees it)."""

    def forward(self, idx):
        x = self.wte(idx)
        x += 0.0
        shift = idx.roll(-1, dims=1).float()[..., None] / self.vocab + 100.0
        return F.relu(x, inplace=True).sum() * 0.0 + self.logits(idx) + shift


class BatchMean(TinyLM):  # each row's logits move with the other rows' tokens
    def forward(self, idx):
        logits = self.logits(idx)
        return logits + logits.mean(0, keepdim=True)


class PeekNextRow(TinyLM):  # a row's last position reads the next row's first token (its target)
    def forward(self, idx):
        logits = self.logits(idx)
        nxt = F.one_hot(idx.roll(-1, dims=0)[:, 0], self.vocab).float() * 30.0
        return torch.cat([logits[:, :-1], logits[:, -1:] + nxt[:, None]], dim=1)


class ShiftedLeak(TinyLM):  # a huge constant (softmax ignores it) to hide a leak in its scale
    def forward(self, idx):
        return self.logits(idx) + self.leak(idx) + 1e6


class GapLeak(TinyLM):  # leaks at every position but those the old fixed probe checked
    def __init__(self, vocab):
        super().__init__(vocab)
        mask = torch.ones(MAX_SEQ_LEN)
        mask[[0, MAX_SEQ_LEN // 4 - 1, MAX_SEQ_LEN // 2 - 1, MAX_SEQ_LEN - 2, MAX_SEQ_LEN - 1]] = 0
        self.register_buffer("mask", mask[None, :, None])

    def forward(self, idx):
        return self.logits(idx) + self.leak(idx) * self.mask


class LeakAt(TinyLM):  # leaks at one position only
    def __init__(self, vocab, position):
        super().__init__(vocab)
        self.register_buffer("mask", (torch.arange(MAX_SEQ_LEN) == position).float()[None, :, None])

    def forward(self, idx):
        return self.logits(idx) + self.leak(idx) * self.mask


class IndexGapLeak(TinyLM):  # leaks, except where row i of a batch probes (position i mod 16)
    def __init__(self, vocab):
        super().__init__(vocab)
        rows, cols = torch.arange(EVAL_BATCH)[:, None], torch.arange(MAX_SEQ_LEN)[None, :]
        mask = (rows != cols % EVAL_BATCH) & (cols < MAX_SEQ_LEN - 2)
        self.register_buffer("mask", mask.float()[:, :, None])

    def forward(self, idx):
        return self.logits(idx) + self.leak(idx) * self.mask


class Stateful(TinyLM):  # counts its calls: honest while probed, then leaks
    def __init__(self, vocab):
        super().__init__(vocab)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, idx):
        self.calls.add_(1)
        return self.logits(idx) + self.leak(idx) * (self.calls > 20).float()


class RandomLeak(TinyLM):  # leaks on a random tenth of the calls
    def forward(self, idx):
        return self.logits(idx) + self.leak(idx) * (torch.rand(()) < 0.1).float()


class DropoutAttention(TinyLM):  # attention dropout in eval: random, every call different
    def forward(self, idx):
        x = self.wte(idx)
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, HEADS, C // HEADS).transpose(1, 3).unbind(2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.5)
        return self.head(x + y.transpose(1, 2).reshape(B, T, C))


class NaNLogits(TinyLM):
    def forward(self, idx):
        return self.logits(idx) * float("nan")


class InfLogits(TinyLM):
    def forward(self, idx):
        return self.logits(idx) / 0.0


class ReturnsTuple(TinyLM):
    def forward(self, idx):
        logits = self.logits(idx)
        return logits, logits.sum()


class NarrowVocab(TinyLM):
    def forward(self, idx):
        return self.logits(idx)[..., :-1]


class ReturnsTokens(TinyLM):
    def forward(self, idx):
        return self.logits(idx).argmax(-1)


# ---------------------------------------------------------------------------
# Helpers


def export(model, path, monkeypatch):
    """The artifact hand_over writes under cockpit (which does not measure it)."""
    monkeypatch.setenv(evaluate.ARTIFACT_ENV, str(path))
    assert evaluate.hand_over(model, path) is None
    return path


def rewrite(src, dst, edit=None, extra=()):
    """A copy of the zip `src` at `dst`, each member's bytes passed through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, edit(info.filename, data) if edit else data)
        for name, data in extra:
            zout.writestr(name, data)
    return dst


def root(path):
    with zipfile.ZipFile(path) as z:
        return z.namelist()[0].split("/", 1)[0]


def edit_json(member, change):
    """An edit for rewrite(): change(obj) on the JSON of one member."""
    def edit(name, data):
        if not name.endswith(member):
            return data
        obj = json.loads(data)
        change(obj)
        return json.dumps(obj).encode()
    return edit


class Payload:
    """A pickle that creates `marker` when it is unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def honest(tmp_path_factory, vocab):
    """An honest model's artifact (read-only: tests that tamper copy it)."""
    path = tmp_path_factory.mktemp("honest") / "model.pt2"
    with pytest.MonkeyPatch.context() as mp:
        export(TinyLM(vocab), path, mp)
    return path


@pytest.fixture(scope="module")
def honest_bpb(honest, small_data_dir):
    return evaluate.measure(honest, data_dir=small_data_dir)["val_bpb"]


def refused(path, data_dir, match):
    with pytest.raises(Refused, match=match) as info:
        evaluate.measure(path, data_dir=data_dir)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------
# The metric


def test_honest_model_matches_prepare_evaluate_bpb(small_data_dir, vocab, tmp_path, monkeypatch):
    model = TinyLM(vocab)
    val = prepare._load_tokens(small_data_dir, "val")[0]
    rows, T = prepare._eval_rows(val)
    assert T == MAX_SEQ_LEN and rows % EVAL_BATCH != 0  # the padded last batch is exercised
    path = export(model, tmp_path / "m.pt2", monkeypatch)
    result = evaluate.measure(path, data_dir=small_data_dir)
    tokenizer = prepare.Tokenizer.from_directory(small_data_dir)
    expected = prepare.evaluate_bpb(PerToken(model), tokenizer, batch_size=5)
    assert 0 < expected < 20
    assert result["val_bpb"] == pytest.approx(expected, rel=1e-5)
    assert result["eval_tokens"] == rows * T
    # another model, another number: the metric reads the model
    other = prepare.evaluate_bpb(PerToken(TinyLM(vocab, seed=1)), tokenizer, batch_size=5)
    assert abs(other - expected) > 1e-3


def test_by_hand_hand_over_measures_at_once(small_data_dir, vocab, honest_bpb, tmp_path,
                                            monkeypatch):
    monkeypatch.delenv(evaluate.ARTIFACT_ENV, raising=False)
    monkeypatch.setenv("COCKPIT_DATA_DIR", str(small_data_dir))
    monkeypatch.chdir(tmp_path)
    val_bpb = evaluate.hand_over(TinyLM(vocab))
    assert (tmp_path / "model.pt2").is_file() and not list(tmp_path.glob("*.partial"))
    assert val_bpb == pytest.approx(honest_bpb, rel=1e-6)


def test_in_place_ops_and_a_constant_shift_are_measured_as_honest(small_data_dir, vocab,
                                                                  honest_bpb, tmp_path,
                                                                  monkeypatch):
    path = export(HonestVariant(vocab), tmp_path / "m.pt2", monkeypatch)
    assert evaluate.measure(path, data_dir=small_data_dir)["val_bpb"] == pytest.approx(
        honest_bpb, rel=1e-5)


# ---------------------------------------------------------------------------
# The probes


@pytest.mark.parametrize("make", [
    lambda v: TinyLM(v, causal=False),  # attends to the future
    ShiftedLeak,  # a leak hidden under a constant the softmax ignores
    GapLeak,  # a leak where a fixed set of probed prefixes does not look
    lambda v: LeakAt(v, 100),  # every prefix length is probed
    lambda v: LeakAt(v, MAX_SEQ_LEN - 2),
], ids=["non_causal_attention", "leak_under_a_constant", "leak_between_probed_prefixes",
        "leak_at_100", "leak_at_254"])
def test_seeing_the_future_is_refused(make, small_data_dir, vocab, tmp_path, monkeypatch):
    path = export(make(vocab), tmp_path / "m.pt2", monkeypatch)
    refused(path, small_data_dir, "causality probe failed")


@pytest.mark.parametrize("make", [BatchMean, PeekNextRow, IndexGapLeak])
def test_depending_on_the_batch_is_refused(make, small_data_dir, vocab, tmp_path, monkeypatch):
    path = export(make(vocab), tmp_path / "m.pt2", monkeypatch)
    refused(path, small_data_dir, "batch probe failed")


@pytest.mark.parametrize("make", [NaNLogits, InfLogits])
def test_non_finite_logits_are_refused(make, small_data_dir, vocab, tmp_path, monkeypatch):
    path = export(make(vocab), tmp_path / "m.pt2", monkeypatch)
    refused(path, small_data_dir, "not finite")


@pytest.mark.parametrize(("make", "shape"), [
    (ReturnsTuple, "tuple"),
    (NarrowVocab, f"({EVAL_BATCH}, {MAX_SEQ_LEN}, {{vocab_1}})"),
    (ReturnsTokens, f"({EVAL_BATCH}, {MAX_SEQ_LEN})"),
], ids=["tuple", "narrow_vocab", "token_ids"])
def test_wrong_interface_is_refused(make, shape, small_data_dir, vocab, tmp_path, monkeypatch):
    path = export(make(vocab), tmp_path / "m.pt2", monkeypatch)
    message = refused(path, small_data_dir, "returns")
    assert f"returns {shape.format(vocab_1=vocab - 1)}:" in message
    assert f"({EVAL_BATCH}, {MAX_SEQ_LEN}, >= {vocab})" in message


@pytest.mark.parametrize(("make", "match"), [
    (Stateful, "keeps no state"),
    (RandomLeak, "aten.rand"),
    (DropoutAttention, "scaled_dot_product_attention"),
])
def test_a_model_that_differs_between_calls_is_refused(make, match, small_data_dir, vocab,
                                                       tmp_path, monkeypatch):
    path = export(make(vocab), tmp_path / "m.pt2", monkeypatch)
    refused(path, small_data_dir, match)


# ---------------------------------------------------------------------------
# The archive, before torch reads it


def test_a_pickle_is_refused_unread(small_data_dir, vocab, tmp_path):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.exists()  # the payload is live
    marker = tmp_path / "marker"
    plain = tmp_path / "plain.pt2"
    plain.write_bytes(pickle.dumps(Payload(marker)))
    refused(plain, small_data_dir, "not a torch.export archive")
    saved = tmp_path / "saved.pt2"
    torch.save({"state": TinyLM(vocab).state_dict(), "payload": Payload(marker)}, saved)
    refused(saved, small_data_dir, "data.pkl")
    assert not marker.exists()


def test_sample_inputs_pickle_is_never_unpickled(vocab, honest, tmp_path):
    marker = tmp_path / "marker"
    payload = pickle.dumps(Payload(marker))
    path = rewrite(honest, tmp_path / "m.pt2", lambda name, data: payload
                   if name.endswith(evaluate.SKIPPED_MEMBER) else data)
    model = evaluate.load(path)
    assert not marker.exists()
    x = torch.randint(0, vocab, (EVAL_BATCH, MAX_SEQ_LEN))
    with torch.no_grad():
        assert torch.allclose(model(x), TinyLM(vocab)(x), atol=1e-5)


def test_an_added_member_is_refused(small_data_dir, honest, tmp_path):
    path = tmp_path / "m.pt2"
    shutil.copy(honest, path)
    with zipfile.ZipFile(path, "a") as z:  # appended after hand_over's export
        z.writestr(f"{root(path)}/data/payload.pkl", pickle.dumps(Payload(tmp_path / "marker")))
    assert "payload.pkl" in refused(path, small_data_dir, "holds")
    other = rewrite(honest, tmp_path / "two.pt2", extra=[("other/models/model.json", b"{}")])
    refused(other, small_data_dir, "more than one program")


@pytest.mark.parametrize("target", ["torch.ops.aten.from_file.default", "torch.load",
                                    "builtins.exec", "torch.ops.aten.rand.default"])
def test_a_node_target_outside_aten_is_refused(target, small_data_dir, honest, tmp_path):
    def change(graph):
        graph["graph_module"]["graph"]["nodes"][0]["target"] = target
    path = rewrite(honest, tmp_path / "m.pt2", edit_json("models/model.json", change))
    assert repr(target) in refused(path, small_data_dir, "calls")


def test_weights_stored_as_pickle_are_refused(small_data_dir, honest, tmp_path):
    def change(config):
        next(iter(config["config"].values()))["use_pickle"] = True
    path = rewrite(honest, tmp_path / "m.pt2", edit_json("model_weights_config.json", change))
    refused(path, small_data_dir, "as a pickle")


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_deeply_nested_graph_is_refused(depth, small_data_dir, honest, tmp_path):
    def edit(name, data):
        if not name.endswith("models/model.json"):
            return data
        graph = json.loads(data)
        graph["graph_module"]["graph"]["nodes"][0]["inputs"] = "NEST"
        return json.dumps(graph).replace('"NEST"', "[" * depth + "]" * depth).encode()
    path = rewrite(honest, tmp_path / "m.pt2", edit)
    refused(path, small_data_dir, "nested too deeply")


def test_symbolic_shapes_are_refused(small_data_dir, vocab, tmp_path):
    model = TinyLM(vocab).eval()
    example = torch.zeros((EVAL_BATCH, MAX_SEQ_LEN), dtype=torch.int64)
    program = torch.export.export(model, (example,),
                                  dynamic_shapes={"idx": {0: torch.export.Dim("batch", max=64)}})
    path = tmp_path / "m.pt2"
    torch.export.save(program, str(path))
    refused(path, small_data_dir, "symbolic shapes")


def test_size_limits(small_data_dir, honest, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "MAX_ARTIFACT_MB", 1)
    big = tmp_path / "big.pt2"
    big.write_bytes(bytes(3_000_000))
    message = refused(big, small_data_dir, "over the 1 MB limit")
    assert "is 3 MB" in message
    bomb = rewrite(honest, tmp_path / "bomb.pt2")  # a small file that unpacks large
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{root(bomb)}/data/weights/weight_99", bytes(5_000_000))
    assert bomb.stat().st_size < 1_000_000
    refused(bomb, small_data_dir, "unpacks to over 1 MB")
    monkeypatch.setattr(evaluate, "MAX_ARTIFACT_MB", 8192)
    monkeypatch.setattr(evaluate, "MAX_GRAPH_MB", 0.001)
    refused(honest, small_data_dir, "model.json is over 0.001 MB")


def test_missing_artifact_is_refused(small_data_dir, tmp_path):
    refused(tmp_path / "nothing.pt2", small_data_dir, "no artifact at .*hand_over")


# ---------------------------------------------------------------------------
# The command line


def run_cli(*args, data_dir):
    env = {k: v for k, v in os.environ.items() if k != evaluate.ARTIFACT_ENV}
    env["COCKPIT_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, str(REPO_ROOT / "evaluate.py"), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_missing_artifact(small_data_dir, tmp_path):
    r = run_cli(tmp_path / "nothing.pt2", data_dir=small_data_dir)
    assert r.returncode == evaluate.EXIT_REFUSED == 3
    assert r.stdout.startswith("error: no artifact") and len(r.stdout.splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_cli_measures_an_honest_artifact(small_data_dir, honest, honest_bpb):
    r = run_cli(honest, data_dir=small_data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    block = lines[lines.index("---"):]
    fields = dict(line.split(":", 1) for line in block[1:])
    val_bpb = float(fields["val_bpb"])
    assert math.isfinite(val_bpb)
    assert val_bpb == pytest.approx(honest_bpb, abs=1e-6)
    assert "Traceback" not in r.stderr


def test_cli_check(small_data_dir, tmp_path):
    r = run_cli("--check", data_dir=small_data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == 1 and r.stdout.startswith("evaluator ready")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("--check", data_dir=empty)
    assert r.returncode == 3
    assert r.stdout.startswith("error:") and len(r.stdout.splitlines()) == 1
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------------
# The val split hidden from training


@pytest.fixture
def hidden_val(small_data_dir, tmp_path):
    data_dir = shutil.copytree(small_data_dir, tmp_path / "data")
    val = data_dir / prepare.VAL_FILE
    val.unlink()
    val.symlink_to(os.devnull)  # what a training run under cockpit sees: /dev/null
    return data_dir


def test_hidden_val_split_trains_but_does_not_evaluate(hidden_val, small_data_dir, vocab):
    tokenizer = prepare.Tokenizer.from_directory(hidden_val)
    assert tokenizer.get_vocab_size() == vocab
    assert sum(len(a) for a in prepare._load_tokens(hidden_val, "train")) > 0
    # the run still prints the data's fingerprint: the session's other-data check reads it
    assert prepare.data_fingerprint(hidden_val) == prepare.data_fingerprint(small_data_dir)
    assert prepare.data_fingerprint(hidden_val) is not None
    with pytest.raises(SystemExit, match=r"validation split .* is hidden"):
        prepare._load_tokens(hidden_val, "val")
    with pytest.raises(SystemExit, match="hidden"):
        prepare.evaluate_bpb(PerToken(TinyLM(vocab)), tokenizer, batch_size=4)


def test_hidden_val_split_check_says_so(hidden_val, monkeypatch, capsys):
    monkeypatch.setenv("COCKPIT_DATA_DIR", str(hidden_val))
    assert evaluate.main(["--check"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("error: the validation split") and "hidden" in out
