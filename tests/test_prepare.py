"""prepare.py: building, idempotence, bad input, the pinned split and exact bits per byte."""
import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import run_prepare, write_small_corpus

import prepare


def _files(data_dir):
    return {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir() if p.is_file()}


def test_build_writes_complete_dataset(small_data_dir):
    meta = json.loads((small_data_dir / "fingerprint.json").read_text())
    names = set(_files(small_data_dir))
    assert {"fingerprint.json", "tokenizer.json", "val.bin", "train_000.bin"} <= names
    assert not list(small_data_dir.glob(".building-*"))
    fp = prepare.data_fingerprint(small_data_dir)
    assert fp == meta["fingerprint"] and len(fp) == 12 and int(fp, 16) >= 0
    assert meta["train_tokens"] > 10 * meta["val_tokens"] / 2 > 0
    assert (small_data_dir / "val.bin").stat().st_size == 2 * meta["val_tokens"]
    assert meta["source"]["kind"] == "dir"


def test_rerun_is_a_noop(small_data_dir, small_source_dir):
    before = _files(small_data_dir)
    fp = prepare.data_fingerprint(small_data_dir)
    r = run_prepare(small_data_dir, "--source", small_source_dir)
    assert r.returncode == 0, r.stderr
    assert "nothing to do" in r.stdout and "tokeniz" not in r.stdout
    assert _files(small_data_dir) == before  # nothing rewritten
    assert prepare.data_fingerprint(small_data_dir) == fp


def test_rebuild_is_deterministic(small_data_dir, small_source_dir, tmp_path):
    r = run_prepare(tmp_path, "--source", small_source_dir, "--force")
    assert r.returncode == 0, r.stderr
    assert prepare.data_fingerprint(tmp_path) == prepare.data_fingerprint(small_data_dir)
    assert (tmp_path / "val.bin").read_bytes() == (small_data_dir / "val.bin").read_bytes()


def test_other_source_is_announced_and_rebuilt(tmp_path):
    a = write_small_corpus(tmp_path / "a", n_files=6, lines_per_file=30, seed=1)
    b = write_small_corpus(tmp_path / "b", n_files=6, lines_per_file=30, seed=2)
    data = tmp_path / "data"
    assert run_prepare(data, "--source", a).returncode == 0
    fp_a = prepare.data_fingerprint(data)
    r = run_prepare(data, "--source", b)
    assert r.returncode == 0, r.stderr
    assert "holds data from another source" in r.stdout and "rebuilding" in r.stdout
    assert prepare.data_fingerprint(data) not in (None, fp_a)
    # an edited source is noticed too
    (b / "mod_000.py").write_text("x = 1\n" * 50)
    r = run_prepare(data, "--source", b)
    assert "changed since the last build" in r.stdout


def test_plain_prepare_keeps_the_users_own_data(small_data_dir):
    """The loop runs `python prepare.py` before its first run: that must not replace data
    the user prepared from their own --source with the default corpus."""
    before = prepare.data_fingerprint(small_data_dir)
    r = run_prepare(small_data_dir)
    assert r.returncode == 0, r.stderr
    assert "kept" in r.stdout and prepare.data_fingerprint(small_data_dir) == before


@pytest.mark.parametrize("make", ["missing", "empty", "file", "binary_only"])
def test_bad_source_is_one_line_exit_2(tmp_path, make):
    src = tmp_path / "src"
    if make == "empty":
        src.mkdir()
    elif make == "file":
        src.write_text("hello")
    elif make == "binary_only":
        src.mkdir()
        (src / "blob.bin").write_bytes(b"\0\1\2" * 100)
    r = run_prepare(tmp_path / "data", "--source", src)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prepare.py: error:"), r.stderr
    assert prepare.data_fingerprint(tmp_path / "data") is None


def test_parquet_source(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = write_small_corpus(tmp_path / "text", n_files=30, lines_per_file=30)
    rows = [p.read_text() for p in sorted(src.iterdir())]
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"text": rows, "id": list(range(len(rows)))}),
                   tmp_path / "pq" / "docs.parquet")
    r = run_prepare(tmp_path / "data", "--source", tmp_path / "pq")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "data" / "fingerprint.json").read_text())
    assert meta["train_docs"] + meta["val_docs"] == len(rows) and meta["val_docs"] >= 1
    # a parquet file without a `text` column is bad input
    (tmp_path / "bad").mkdir()
    pq.write_table(pa.table({"body": ["a", "b"]}), tmp_path / "bad" / "x.parquet")
    r = run_prepare(tmp_path / "data2", "--source", tmp_path / "bad")
    assert r.returncode == 2 and "text" in r.stderr and "Traceback" not in r.stderr


def test_incomplete_build_is_not_data(small_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_data_dir, data)
    assert prepare.data_fingerprint(data) is not None
    with open(data / "val.bin", "r+b") as f:  # a truncated shard: as if killed mid-copy
        f.truncate(10)
    assert prepare.data_fingerprint(data) is None
    (data / "fingerprint.json").unlink()
    assert prepare.data_fingerprint(data) is None
    with pytest.raises(SystemExit, match=r"no prepared data in .*: run `python prepare.py` first"):
        prepare.Tokenizer.from_directory(data)


def test_tokenizer_roundtrip_and_token_bytes(small_data_dir):
    tok = prepare.Tokenizer.from_directory(small_data_dir)
    bos = tok.get_bos_token_id()
    assert 256 < tok.get_vocab_size() <= prepare.VOCAB_SIZE
    text = 'def f(x):\n    return "héllo <|bos|>"  # ü€😀 \t\n'
    ids = tok.encode(text, prepend=bos)
    assert ids[0] == bos and bos not in ids[1:]  # the literal is plain text
    assert tok.decode(ids) == text
    assert tok.encode([text, "a"])[1] == tok.encode("a")
    tb = tok.token_bytes()
    assert tb[bos] == 0 and (tb[np.arange(len(tb)) != bos] > 0).all()
    assert int(tb[ids].sum()) == len(text.encode("utf-8"))
    # token byte lengths add up to the exact UTF-8 size of the whole val split
    val = np.fromfile(small_data_dir / "val.bin", dtype=np.uint16)
    assert int(tb[val].sum()) == len(tok.decode(val).encode("utf-8"))
    assert torch.equal(prepare.get_token_bytes("cpu", small_data_dir), torch.from_numpy(tb))


def test_dataloader(small_data_dir):
    tok = prepare.Tokenizer.from_directory(small_data_dir)
    train = prepare.make_dataloader(tok, 4, 32, "train", "cpu")
    x, y = next(train)
    assert x.shape == y.shape == (4, 32) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    n_train = json.loads((small_data_dir / "fingerprint.json").read_text())["train_tokens"]
    for _ in range(n_train // (4 * 32) + 2):
        next(train)
    assert train.epoch >= 2
    v1 = [next(prepare.make_dataloader(tok, 2, 16, "val", "cpu")) for _ in range(1)]
    v2 = next(prepare.make_dataloader(tok, 2, 16, "val", "cpu"))
    assert torch.equal(v1[0][0], v2[0])
    val = np.fromfile(small_data_dir / "val.bin", dtype=np.uint16).astype(np.int64)
    assert v2[0][0].tolist() == val[:16].tolist() and v2[1][0].tolist() == val[1:17].tolist()
    with pytest.raises(ValueError):
        prepare.make_dataloader(tok, 2, 16, "test", "cpu")


class FakeModel:
    """Returns a chosen per-token loss and records the targets it was asked about."""

    def __init__(self, fn):
        self.fn, self.targets = fn, []

    def __call__(self, x, y, reduction="mean"):
        assert reduction == "none" and x.shape == y.shape and not torch.is_grad_enabled()
        self.targets.append(y.reshape(-1).clone())
        return self.fn(y).float()


def test_evaluate_bpb_is_exact(small_data_dir):
    tok = prepare.Tokenizer.from_directory(small_data_dir)
    tb = tok.token_bytes()
    bos = tok.get_bos_token_id()
    val = np.fromfile(small_data_dir / "val.bin", dtype=np.uint16).astype(np.int64)
    T = prepare.MAX_SEQ_LEN
    n = min(prepare.EVAL_TOKENS, len(val) - 1) // T * T
    assert n >= T
    expected_y = val[1:n + 1]
    n_special = int((expected_y == bos).sum())
    assert n_special > 0  # the check below would prove nothing otherwise
    n_bytes = int(tb[expected_y].sum())

    # constant loss c (and a huge loss on special targets, which must not count)
    c = 2.5
    m = FakeModel(lambda y: torch.where(y == bos, torch.tensor(1e9), torch.tensor(c)))
    bpb = prepare.evaluate_bpb(m, tok, batch_size=3)
    assert torch.cat(m.targets).tolist() == expected_y.tolist()  # first EVAL_TOKENS, in order
    want = c * (len(expected_y) - n_special) / (math.log(2) * n_bytes)
    assert bpb == pytest.approx(want, rel=1e-12)
    # batch size does not change the result
    assert prepare.evaluate_bpb(FakeModel(m.fn), tok,
                                batch_size=1000) == pytest.approx(want, rel=1e-12)
    # a loss of exactly ln(2) nats per byte is exactly 1 bit per byte
    tbt = torch.from_numpy(tb).double()
    one = FakeModel(lambda y: tbt[y] * math.log(2))
    assert prepare.evaluate_bpb(one, tok, batch_size=4) == pytest.approx(1.0, rel=1e-6)


def test_unigram_bpb(small_data_dir):
    u = prepare.unigram_bpb(small_data_dir)
    assert 0.1 < u < 8 and math.isfinite(u)
    # the unigram model is a FakeModel too: same number through evaluate_bpb
    tok = prepare.Tokenizer.from_directory(small_data_dir)
    tb = tok.token_bytes()
    counts = np.zeros(len(tb))
    counts += np.bincount(np.fromfile(small_data_dir / "train_000.bin", dtype=np.uint16),
                          minlength=len(tb))
    p = np.where(tb > 0, counts + 1, 0) / np.where(tb > 0, counts + 1, 0).sum()
    nll = torch.from_numpy(-np.log(np.where(p > 0, p, 1.0)))
    assert prepare.evaluate_bpb(FakeModel(lambda y: nll[y]), tok, 8) == pytest.approx(u, rel=1e-6)
