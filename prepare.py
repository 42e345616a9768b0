"""
Data, tokenizer, dataloader and evaluation for cockpit (fixed: the agent never edits this).

    python prepare.py                 # offline corpus: the Python standard library's sources
    python prepare.py --source DIR    # your own text files (.txt .md .py ...) or .parquet (`text` column)
    python prepare.py --force         # rebuild even if the data is up to date

Everything lands in the data dir: ~/.cache/cockpit/data, or $COCKPIT_DATA_DIR. Under
cockpit a training run cannot read val.bin: only the evaluator (evaluate.py) does.

    tokenizer.json      byte-level BPE (HF `tokenizers`), `<|bos|>` separates documents
    train_000.bin ...   uint16 token shards of the training split
    val.bin             uint16 tokens of the PINNED validation split
    fingerprint.json    written last: the build is complete iff this file exists and its
                        files are all there. Holds the fingerprint (a short hash over the
                        tokenizer and all token files), the source and the counts.

Split: a document (a file, or a parquet row) goes to val when a hash of its relative path
(and row number) falls below VAL_PERMILLE/1000, so the split never moves between runs or
machines, and adding files never moves an old file across the split. val.bin holds the val
documents in hash order, so its first EVAL_TOKENS (what evaluate_bpb scores) sample many.

One data dir holds one dataset. Running `prepare.py` for a different source than the one
the data dir holds says so and rebuilds for the new source (use a separate
COCKPIT_DATA_DIR per dataset to keep both). Sources are read into memory (CPU-scale
research: up to a few GB of text is fine).
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import stat
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------
# Constants train.py imports (fixed: changing them changes the benchmark)

MAX_SEQ_LEN = 256  # context length of training and evaluation
TIME_BUDGET = int(os.environ.get("COCKPIT_TIME_BUDGET", 300))  # seconds of training
EVAL_TOKENS = 2**16  # pinned eval size (capped at what the val split holds): ~3 s on a 2-core CPU
VOCAB_SIZE = 4096  # BPE vocabulary (target; a tiny corpus may yield fewer merges)
BOS_TOKEN = "<|bos|>"  # special token: separates documents, has 0 bytes

# Build settings (part of the source signature: changing them triggers a rebuild)
VAL_PERMILLE = 100  # ~10% of documents go to the pinned val split
SHARD_TOKENS = 2**24  # tokens per train shard (32 MB of uint16)
TOKENIZER_MAX_CHARS = 500_000_000  # cap on the text the BPE is trained on
FORMAT_VERSION = 1

FINGERPRINT_FILE = "fingerprint.json"
TOKENIZER_FILE = "tokenizer.json"
VAL_FILE = "val.bin"

EXCLUDED_STDLIB_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


class PrepareError(Exception):
    """Bad input or missing data: reported as one line, never as a traceback."""


def get_data_dir():
    """The data dir: $COCKPIT_DATA_DIR, else ~/.cache/cockpit/data (read at call time)."""
    env = os.environ.get("COCKPIT_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cockpit" / "data"


def _log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# Sources


def _stdlib_files():
    """Sorted (relpath, path) of the standard library's own .py sources, minus tests,
    installed packages and build-specific files (which differ between installs)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise PrepareError(f"standard library not found at {root}: use --source DIR")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in EXCLUDED_STDLIB_DIRS and not d.startswith(("config-", ".")) and d != "lib-dynload"
        )
        for name in sorted(filenames):
            if not name.endswith(".py") or name.startswith("_sysconfigdata"):
                continue
            p = Path(dirpath) / name
            out.append((p.relative_to(root).as_posix(), p))
    out.sort()
    return root, out


def _dir_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if p.is_file():
                out.append((p.relative_to(root).as_posix(), p))
    out.sort()
    return out


def describe_source(source=None):
    """(descriptor, files) for a source: None = stdlib, else a directory. The descriptor
    identifies the source and its state (paths, sizes, mtimes) plus the build settings,
    cheaply (stat only), so an up-to-date data dir is recognised in milliseconds."""
    if source is None:
        root, files = _stdlib_files()
        kind = "stdlib"
    else:
        root = Path(source).expanduser()
        if not root.exists():
            raise PrepareError(f"source directory not found: {root}")
        if not root.is_dir():
            raise PrepareError(f"source is not a directory: {root}")
        root = root.resolve()
        files = _dir_files(root)
        if not files:
            raise PrepareError(f"source directory is empty: {root}")
        kind = "dir"
    h = hashlib.sha256()
    h.update(json.dumps([FORMAT_VERSION, VOCAB_SIZE, VAL_PERMILLE, SHARD_TOKENS, BOS_TOKEN,
                         TOKENIZER_MAX_CHARS]).encode())
    for rel, p in files:
        st = p.stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    desc = {"kind": kind, "root": str(root), "n_files": len(files), "signature": h.hexdigest()[:16]}
    return desc, files


def _read_documents(files):
    """[(key, text)] in sorted order. Text files must be UTF-8 (binary files are skipped);
    a .parquet file contributes one document per row of its `text` column."""
    docs, skipped = [], []
    for rel, p in files:
        if p.suffix.lower() == ".parquet":
            try:
                import pyarrow.parquet as pq
                table = pq.read_table(p, columns=["text"])
            except ImportError:
                raise PrepareError(f"{rel}: reading .parquet needs pyarrow (pip install pyarrow)")
            except (KeyError, ValueError) as e:
                raise PrepareError(f"{rel}: parquet file has no readable `text` column ({str(e).splitlines()[0]})")
            except Exception as e:  # corrupt file etc.
                raise PrepareError(f"{rel}: cannot read parquet file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            for i, text in enumerate(table.column("text").to_pylist()):
                if isinstance(text, str) and text:
                    docs.append((f"{rel}#{i}", text))
            continue
        data = p.read_bytes()
        if not data:
            continue
        if b"\0" in data[:8192]:
            skipped.append(rel)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(rel)
            continue
        docs.append((rel, text))
    return docs, skipped


def _is_val(key):
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return h % 1000 < VAL_PERMILLE


def split_documents(docs):
    """Pinned split by hash of each document's key. Never leaves a side empty."""
    if len(docs) < 2:
        raise PrepareError(f"need at least 2 documents to make a train and a val split, found {len(docs)}")
    val = [_is_val(k) for k, _ in docs]
    if not any(val) or all(val):
        # tiny sources: put the single document with the smallest hash on the rare side
        rank = min(range(len(docs)), key=lambda i: hashlib.sha256(docs[i][0].encode()).digest())
        val = [False] * len(docs) if not any(val) else [True] * len(docs)
        val[rank] = not val[rank]
    train_docs = [t for (k, t), v in zip(docs, val) if not v]
    # val documents in hash order, so the first EVAL_TOKENS sample many documents
    val_docs = [t for (k, t), v in sorted(zip(docs, val), key=lambda kv: hashlib.sha256(kv[0][0].encode()).digest()) if v]
    return train_docs, val_docs


# ---------------------------------------------------------------------------
# Tokenizer


def _bytes_to_unicode():
    """GPT-2's reversible byte <-> printable-unicode table used by byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_tokenizer(texts):
    from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    budget, chosen = TOKENIZER_MAX_CHARS, []
    for t in texts:
        if budget <= 0:
            break
        chosen.append(t[:budget])
        budget -= len(t)
    tok.train_from_iterator(chosen, trainer=trainer, length=len(chosen))
    return tok


class Tokenizer:
    """Thin wrapper over the HF byte-level BPE that remembers its data dir, so
    make_dataloader and evaluate_bpb read the dataset this tokenizer belongs to."""

    def __init__(self, hf_tokenizer, data_dir=None):
        self._tok = hf_tokenizer
        self._tok.encode_special_tokens = True  # "<|bos|>" inside text is plain text
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.bos_token_id = self._tok.token_to_id(BOS_TOKEN)
        self._token_bytes = None

    @classmethod
    def from_directory(cls, data_dir=None):
        from tokenizers import Tokenizer as HFTokenizer

        data_dir = Path(data_dir) if data_dir is not None else get_data_dir()
        require_data(data_dir)
        return cls(HFTokenizer.from_file(str(data_dir / TOKENIZER_FILE)), data_dir)

    def get_vocab_size(self):
        return self._tok.get_vocab_size()

    def get_bos_token_id(self):
        return self.bos_token_id

    def encode(self, text, prepend=None):
        """str -> list[int]; list[str] -> list[list[int]]. `prepend`: a token id or
        token string put in front of each sequence (e.g. the BOS token)."""
        if isinstance(prepend, str):
            prepend = self._tok.token_to_id(prepend)
        head = [prepend] if prepend is not None else []
        if isinstance(text, str):
            return head + self._tok.encode(text, add_special_tokens=False).ids
        return [head + e.ids for e in self._tok.encode_batch(list(text), add_special_tokens=False)]

    def decode(self, ids):
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def token_bytes(self):
        """numpy int32 array: UTF-8 byte length of each token id (0 for special tokens)."""
        if self._token_bytes is None:
            dec = {c: b for b, c in _bytes_to_unicode().items()}
            special = {t.content for t in self._tok.get_added_tokens_decoder().values() if t.special}
            out = np.zeros(self.get_vocab_size(), dtype=np.int32)
            for piece, i in self._tok.get_vocab().items():
                if piece in special:
                    continue
                out[i] = sum(1 for c in piece if c in dec)
            self._token_bytes = out
        return self._token_bytes


# ---------------------------------------------------------------------------
# Data dir state


def _hidden(path):
    """Whether cockpit's sandbox hides this file from the run (it shows /dev/null there)."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _load_meta(data_dir):
    """fingerprint.json if the build in data_dir is complete (all files present, right
    sizes). A val split hidden from a training run under cockpit counts as present."""
    data_dir = Path(data_dir)
    try:
        meta = json.loads((data_dir / FINGERPRINT_FILE).read_text())
        files = [(f["name"], f["tokens"]) for f in meta["train_files"]]
        files.append((meta["val_file"]["name"], meta["val_file"]["tokens"]))
        for name, ntok in files:
            if name == meta["val_file"]["name"] and _hidden(data_dir / name):
                continue
            if (data_dir / name).stat().st_size != 2 * ntok:
                return None
        if not (data_dir / TOKENIZER_FILE).is_file():
            return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def require_data(data_dir=None):
    """Meta of the prepared data; exits with one line if there is none."""
    data_dir = Path(data_dir) if data_dir is not None else get_data_dir()
    meta = _load_meta(data_dir)
    if meta is None:
        raise SystemExit(f"no prepared data in {data_dir}: run `python prepare.py` first")
    return meta


def data_fingerprint(data_dir=None):
    """Short hex hash over the tokenizer and all token files, or None if no data. A run
    under cockpit, which cannot read the val split, gets the same fingerprint."""
    meta = _load_meta(Path(data_dir) if data_dir is not None else get_data_dir())
    return meta["fingerprint"] if meta else None


def _describe(desc):
    return "the Python standard library" if desc.get("kind") == "stdlib" else f"{desc.get('root')}"


# ---------------------------------------------------------------------------
# Build


class _ShardWriter:
    def __init__(self, build_dir, prefix, max_tokens):
        self.dir, self.prefix, self.max = build_dir, prefix, max_tokens
        self.files, self._f, self._n = [], None, 0

    def _open(self):
        name = f"{self.prefix}_{len(self.files):03d}.bin" if self.max else f"{self.prefix}.bin"
        self.files.append({"name": name, "tokens": 0})
        self._f = open(self.dir / name, "wb")

    def write(self, arr):
        while len(arr):
            if self._f is None:
                self._open()
            room = len(arr) if not self.max else self.max - self.files[-1]["tokens"]
            chunk, arr = arr[:room], arr[room:]
            self._f.write(chunk.tobytes())
            self.files[-1]["tokens"] += len(chunk)
            if self.max and self.files[-1]["tokens"] >= self.max:
                self._f.close()
                self._f = None

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
        if not self.files:
            self._open()
            self._f.close()
            self._f = None


def _encode_split(tok, texts, writer, bos_id):
    ntok, batch, size = 0, [], 0
    def flush():
        nonlocal ntok
        for enc in tok.encode_batch(batch, add_special_tokens=False):
            ids = np.empty(len(enc.ids) + 1, dtype=np.uint16)
            ids[0] = bos_id
            ids[1:] = enc.ids
            writer.write(ids)
            ntok += len(ids)
        batch.clear()
    for t in texts:
        batch.append(t)
        size += len(t)
        if size > 8_000_000:
            flush()
            size = 0
    if batch:
        flush()
    writer.close()
    return ntok


def build(data_dir, desc, files):
    t0 = time.time()
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(".building-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    build_dir = data_dir / f".building-{os.getpid()}"
    build_dir.mkdir()
    try:
        _log(f"reading {len(files)} files from {_describe(desc)}")
        docs, skipped = _read_documents(files)
        if skipped:
            _log(f"  skipped {len(skipped)} non-UTF-8/binary files (e.g. {skipped[0]})")
        if not docs:
            raise PrepareError(f"no text documents found in {desc['root']}")
        train_docs, val_docs = split_documents(docs)
        train_chars = sum(len(t) for t in train_docs)
        val_chars = sum(len(t) for t in val_docs)
        _log(f"  {len(docs)} documents, {(train_chars + val_chars) / 1e6:.1f}M chars: "
             f"train {len(train_docs)} docs, val {len(val_docs)} docs (pinned by path hash)")
        del docs

        t1 = time.time()
        _log(f"training byte-level BPE tokenizer (vocab {VOCAB_SIZE}) on the train split")
        tok = train_tokenizer(train_docs)
        tok.encode_special_tokens = True
        bos_id = tok.token_to_id(BOS_TOKEN)
        if tok.get_vocab_size() > 65536:
            raise PrepareError("vocab does not fit uint16")
        tok.save(str(build_dir / TOKENIZER_FILE))
        _log(f"  vocab {tok.get_vocab_size()}, {time.time() - t1:.1f}s")

        t1 = time.time()
        _log("tokenizing")
        tw = _ShardWriter(build_dir, "train", SHARD_TOKENS)
        n_train = _encode_split(tok, train_docs, tw, bos_id)
        vw = _ShardWriter(build_dir, "val", 0)
        n_val = _encode_split(tok, val_docs, vw, bos_id)
        _log(f"  train {n_train:,} tokens in {len(tw.files)} shard(s), val {n_val:,} tokens, "
             f"{(n_train + n_val) * 2 / 1e6:.1f} MB, {(train_chars + val_chars) / max(1, n_train + n_val):.2f} chars/token, "
             f"{time.time() - t1:.1f}s")
        if n_val < 2:
            raise PrepareError("val split is empty")

        h = hashlib.sha256()
        for name in [TOKENIZER_FILE] + [f["name"] for f in tw.files] + [VAL_FILE]:
            h.update(name.encode() + b"\0")
            with open(build_dir / name, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
        meta = {
            "fingerprint": h.hexdigest()[:12],
            "format": FORMAT_VERSION,
            "source": desc,
            "vocab_size": tok.get_vocab_size(),
            "bos_token_id": bos_id,
            "train_files": tw.files,
            "val_file": vw.files[0],
            "train_tokens": n_train,
            "val_tokens": n_val,
            "train_docs": len(train_docs),
            "val_docs": len(val_docs),
            "train_chars": train_chars,
            "val_chars": val_chars,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        # Commit: drop the completion marker first, move files in, write the marker last.
        # A kill at any point leaves either the old complete build or no fingerprint.json.
        (data_dir / FINGERPRINT_FILE).unlink(missing_ok=True)
        keep = {TOKENIZER_FILE, VAL_FILE} | {f["name"] for f in tw.files}
        for old in data_dir.glob("train_*.bin"):
            if old.name not in keep:
                old.unlink()
        for name in sorted(keep):
            os.replace(build_dir / name, data_dir / name)
        tmp = build_dir / FINGERPRINT_FILE
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, data_dir / FINGERPRINT_FILE)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    _log(f"done in {time.time() - t0:.1f}s: {data_dir} (fingerprint {meta['fingerprint']})")
    return meta


def prepare(source=None, data_dir=None, force=False):
    """Make sure data_dir holds the prepared data for `source` (None = stdlib). Returns meta."""
    data_dir = Path(data_dir) if data_dir is not None else get_data_dir()
    meta = _load_meta(data_dir)
    old_source = (meta or {}).get("source") or {}
    if meta is not None and not force and source is None and old_source.get("kind") == "dir":
        # Plain `python prepare.py` (as the loop runs it) keeps the user's own data;
        # only --source or --force changes what a data dir holds.
        _log(f"data ready in {data_dir}: fingerprint {meta['fingerprint']} from "
             f"{_describe(old_source)} (kept; --source DIR or --force to change it)")
        return meta
    desc, files = describe_source(source)
    if meta is not None and not force:
        if meta.get("source") == desc:
            _log(f"data ready in {data_dir}: fingerprint {meta['fingerprint']}, "
                 f"{meta['train_tokens']:,} train / {meta['val_tokens']:,} val tokens, vocab {meta['vocab_size']} "
                 f"(source: {_describe(desc)}; nothing to do)")
            return meta
        old = meta.get("source") or {}
        if old.get("kind") == desc["kind"] and old.get("root") == desc["root"]:
            _log(f"source {_describe(desc)} changed since the last build (fingerprint {meta['fingerprint']}): rebuilding")
        else:
            _log(f"data dir {data_dir} holds data from another source ({_describe(old)}, fingerprint "
                 f"{meta['fingerprint']}): rebuilding for {_describe(desc)} "
                 f"(set COCKPIT_DATA_DIR to keep datasets side by side)")
    return build(data_dir, desc, files)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Prepare tokenizer and token shards for cockpit.")
    ap.add_argument("--source", metavar="DIR", help="directory of text or .parquet files (default: Python stdlib sources)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the data is up to date")
    args = ap.parse_args(argv)
    try:
        prepare(args.source, force=args.force)
    except PrepareError as e:
        print(f"prepare.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"prepare.py: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------------
# Runtime: loading tokens, dataloader, evaluation (torch imported lazily)


def _load_tokens(data_dir, split):
    meta = require_data(data_dir)
    if split == "train":
        names = [f["name"] for f in meta["train_files"] if f["tokens"] > 0]
    elif split == "val":
        names = [meta["val_file"]["name"]]
        if _hidden(Path(data_dir) / names[0]):
            raise SystemExit(f"the validation split ({Path(data_dir) / names[0]}) is hidden "
                             "here: under cockpit only its evaluator reads it (see evaluate.py)")
    else:
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    return [np.memmap(Path(data_dir) / n, dtype=np.uint16, mode="r") for n in names]


class DataLoader:
    """Yields (x, y) int64 tensors of shape (B, T) forever; `.epoch` counts passes.
    train: non-overlapping windows of the shards in a seeded random order, a new order
    and a random phase each epoch. val: the same windows in order, deterministic."""

    def __init__(self, arrays, B, T, device, shuffle, seed=0):
        self.arrays, self.B, self.T, self.device = arrays, B, T, device
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
        self.epoch = 0
        self._order, self._pos = None, 0
        if sum(max(0, len(a) - 1) for a in arrays) < 1:
            raise SystemExit("prepared data split is empty: rebuild with `python prepare.py --force`")

    def _new_epoch(self):
        self.epoch += 1
        T = self.T
        windows = []
        for i, a in enumerate(self.arrays):
            n = len(a) - 1
            if n >= T:
                phase = int(self.rng.integers(0, min(T, n - T + 1))) if self.shuffle else 0
                starts = np.arange(phase, n - T + 1, T, dtype=np.int64)
            elif n >= 1:
                starts = np.zeros(1, dtype=np.int64)  # tiny shard: wraps inside the window
            else:
                continue
            windows.append(np.stack([np.full_like(starts, i), starts], 1))
        order = np.concatenate(windows)
        if self.shuffle:
            order = order[self.rng.permutation(len(order))]
        self._order, self._pos = order, 0

    def _window(self, i, s):
        a, T = self.arrays[i], self.T
        if len(a) - 1 >= T:
            return np.asarray(a[s:s + T + 1])
        return np.resize(np.asarray(a), T + 1)

    def __iter__(self):
        return self

    def __next__(self):
        import torch

        rows = []
        for _ in range(self.B):
            if self._order is None or self._pos >= len(self._order):
                self._new_epoch()
            i, s = self._order[self._pos]
            self._pos += 1
            rows.append(self._window(i, s))
        batch = torch.from_numpy(np.stack(rows).astype(np.int64))
        dev = torch.device(self.device)
        if dev.type == "cuda":
            batch = batch.pin_memory().to(dev, non_blocking=True)
        elif dev.type != "cpu":
            batch = batch.to(dev)
        return batch[:, :-1], batch[:, 1:]


def make_dataloader(tokenizer, B, T, split, device="cpu", seed=0):
    data_dir = tokenizer.data_dir if getattr(tokenizer, "data_dir", None) is not None else get_data_dir()
    return DataLoader(_load_tokens(data_dir, split), B, T, device, shuffle=(split == "train"), seed=seed)


def get_token_bytes(device="cpu", data_dir=None):
    """Tensor (vocab_size,) int32: UTF-8 byte length of each token (0 for special tokens)."""
    import torch

    return torch.from_numpy(Tokenizer.from_directory(data_dir).token_bytes()).to(device)


def _eval_rows(val):
    """(rows, T) of the pinned eval targets: the first EVAL_TOKENS (capped) of val."""
    n = min(EVAL_TOKENS, len(val) - 1)
    if n >= MAX_SEQ_LEN:
        return n // MAX_SEQ_LEN, MAX_SEQ_LEN
    return 1, n


def evaluate_bpb(model, tokenizer, batch_size):
    """Bits per byte of `model` on the first EVAL_TOKENS of the pinned val split.
    model(x, y, reduction='none') must return per-token cross-entropy in nats.
    bpb = sum of nats over target tokens / (ln 2 * sum of their UTF-8 bytes); special
    tokens (0 bytes) are left out of both sums. Vocab-size independent."""
    import torch

    data_dir = tokenizer.data_dir if getattr(tokenizer, "data_dir", None) is not None else get_data_dir()
    val = _load_tokens(data_dir, "val")[0]
    rows, T = _eval_rows(val)
    try:
        device = next(model.parameters()).device
    except (AttributeError, StopIteration):
        device = torch.device("cpu")
    token_bytes = torch.from_numpy(tokenizer.token_bytes()).to(device)
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    total_bytes = torch.zeros((), dtype=torch.int64, device=device)
    with torch.no_grad():
        for r0 in range(0, rows, batch_size):
            r1 = min(rows, r0 + batch_size)
            chunk = torch.from_numpy(np.asarray(val[r0 * T:r1 * T + 1]).astype(np.int64)).to(device)
            x = chunk[:-1].view(r1 - r0, T)
            y = chunk[1:].view(r1 - r0, T)
            loss = model(x, y, reduction="none").reshape(-1).double()
            nbytes = token_bytes[y.reshape(-1)]
            total_nats += torch.where(nbytes > 0, loss, torch.zeros_like(loss)).sum()
            total_bytes += nbytes.sum()
    return total_nats.item() / (math.log(2) * total_bytes.item())


def unigram_bpb(data_dir=None):
    """bpb of a unigram model (token frequencies of the train split, add-one smoothed,
    special tokens excluded) on exactly the targets evaluate_bpb uses: the floor a model
    must beat to have learned anything from context."""
    tok = Tokenizer.from_directory(data_dir)
    tb = tok.token_bytes().astype(np.int64)
    V = len(tb)
    counts = np.zeros(V, dtype=np.float64)
    for a in _load_tokens(tok.data_dir, "train"):
        counts += np.bincount(a, minlength=V)[:V]
    counts = np.where(tb > 0, counts + 1.0, 0.0)
    logp = np.full(V, -np.inf)
    logp[tb > 0] = np.log(counts[tb > 0] / counts.sum())
    val = _load_tokens(tok.data_dir, "val")[0]
    rows, T = _eval_rows(val)
    y = np.asarray(val[1:rows * T + 1]).astype(np.int64)
    nb = tb[y]
    nats = -logp[y][nb > 0].sum()
    return float(nats / (math.log(2) * nb.sum()))


if __name__ == "__main__":
    sys.exit(main())
