"""
The file the agent edits: a small GPT trained for a fixed wall-clock TIME_BUDGET, then
handed over (evaluate.hand_over) to be measured in bits per byte (val_bpb, lower is better)
on the pinned validation split. Under cockpit the measuring is cockpit's own: this file
trains, cannot read the validation split, and is timed by cockpit's clock.

    python train.py      # COCKPIT_TIME_BUDGET=60 python train.py for a short run

Hyperparameters are the UPPERCASE constants below, each a plain literal on its own line
(the offline `tune` agent rewrites them with `ast`). The defaults are sized for a small
CPU (2 cores, 60 s); on a GPU scale up DEPTH, MODEL_DIM and BATCH_SIZE. The model's
structure is chosen the same way: each choice is a literal whose comment names its
alternatives (`# a | b | c`); the defaults are the model every session's baseline measured.
"""

import contextlib
import math
import os
import resource
import sys
import time

t_script_start = time.time()

import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import MAX_SEQ_LEN, TIME_BUDGET, Tokenizer, make_dataloader, data_fingerprint
from evaluate import hand_over

# ---------------------------------------------------------------------------
# Hyperparameters (the agent tunes these)

DEPTH = 4  # number of transformer blocks
MODEL_DIM = 128  # width of the residual stream
N_HEADS = 4  # attention heads (MODEL_DIM must be divisible by it)
MLP_RATIO = 4  # hidden width of the MLP = MLP_RATIO * MODEL_DIM
BATCH_SIZE = 4  # sequences of MAX_SEQ_LEN tokens per micro-step
GRAD_ACCUM_STEPS = 1  # micro-steps per optimizer step
LEARNING_RATE = 1e-2  # peak AdamW learning rate
EMBEDDING_LR = 1e-2  # peak learning rate of the (tied) embedding
WEIGHT_DECAY = 0.1  # AdamW decoupled weight decay on block matrices
ADAM_BETA1 = 0.9  # AdamW beta1
ADAM_BETA2 = 0.95  # AdamW beta2
GRAD_CLIP = 1.0  # max global grad norm (0 = off)
WARMUP_RATIO = 0.05  # fraction of the time budget spent warming the LR up
WARMDOWN_RATIO = 0.4  # fraction of the time budget spent decaying the LR at the end
FINAL_LR_FRAC = 0.0  # LR at the end of warmdown, as a fraction of the peak
SEED = 42  # random seed (init and data order); cockpit's re-runs set COCKPIT_SEED

# ---------------------------------------------------------------------------
# Structure (the agent chooses among the alternatives each comment names)

ACTIVATION = "relu2"  # MLP nonlinearity: relu2 | gelu | swiglu
N_KV_HEADS = 4  # key/value heads, fewer = grouped-query attention; divides N_HEADS: 1 | 2 | 4 | 8
QK_NORM = True  # RMSNorm on queries and keys before attention: True | False
TIE_EMBEDDINGS = True  # the lm head is the token embedding: True | False
LOGIT_SOFTCAP = 0  # cap * tanh(logits / cap) on the output, 0 = off: 0 | 15 | 30
MATRIX_OPTIMIZER = "adamw"  # optimizer of the block matrices: adamw | muon
BIGRAM_ROWS = 0  # hashed embedding of each (previous, current) token pair, 0 = off: 0 | 4096 | 16384
CPU_BF16 = False  # bfloat16 matmuls on CPU, faster with bf16 units (a GPU always uses them): True | False

# ---------------------------------------------------------------------------
# Model: pre-norm GPT with RMSNorm, rotary embeddings, and the structure chosen above
# (by default QK-norm, a ReLU^2 MLP, full multi-head attention, no logit cap, no bigrams).
# Embeddings are TIED by default (lm head = token embedding): at CPU scale the V x d
# matrix is a large share of all parameters, and tying halves it and its optimizer cost
# while giving the rarely seen output rows the input side's gradient too.


def rms_norm(x):
    return F.rms_norm(x, (x.size(-1),))


def apply_rotary(x, cos, sin):
    d = x.size(-1) // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads):
        super().__init__()
        assert n_heads % n_kv_heads == 0, "N_KV_HEADS must divide N_HEADS"
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, dim // n_heads
        kv_dim = n_kv_heads * self.head_dim  # fewer key/value heads: each serves a group
        self.c_qkv = nn.Linear(dim, dim + 2 * kv_dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        kv_dim = self.n_kv_heads * self.head_dim
        q, k, v = self.c_qkv(x).split([C, kv_dim, kv_dim], dim=-1)
        q = q.view(B, T, self.n_heads, self.head_dim)
        k = k.view(B, T, self.n_kv_heads, self.head_dim)
        v = v.view(B, T, self.n_kv_heads, self.head_dim)
        if QK_NORM:
            q, k = rms_norm(q), rms_norm(k)  # stable at high learning rates
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if self.n_kv_heads < self.n_heads:  # each key/value head serves n_heads / n_kv_heads
            group = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        if ACTIVATION == "swiglu":  # a gate and a value: 2/3 as wide keeps the parameters
            hidden = max(8, 8 * round(hidden * 2 / 3 / 8))
        width = 2 * hidden if ACTIVATION == "swiglu" else hidden
        self.c_fc = nn.Linear(dim, width, bias=False)
        self.c_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        h = self.c_fc(x)
        if ACTIVATION == "swiglu":
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        elif ACTIVATION == "gelu":
            h = F.gelu(h)
        else:  # relu2
            h = F.relu(h).square()
        return self.c_proj(h)


class Block(nn.Module):
    def __init__(self, dim, n_heads, hidden):
        super().__init__()
        self.attn = Attention(dim, n_heads, N_KV_HEADS)
        self.mlp = MLP(dim, hidden)

    def forward(self, x, cos, sin):
        x = x + self.attn(rms_norm(x), cos, sin)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, depth, dim, n_heads, hidden, seq_len):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, dim)
        # Which token follows which, as a lookup: a small model learns it in a few steps
        # instead of spending its layers on it. Pairs share rows where their hashes collide.
        self.bigram = nn.Embedding(BIGRAM_ROWS, dim) if BIGRAM_ROWS else None
        self.blocks = nn.ModuleList([Block(dim, n_heads, hidden) for _ in range(depth)])
        head_dim = dim // n_heads
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        freqs = torch.outer(torch.arange(seq_len).float(), inv_freq)
        self.register_buffer("cos", freqs.cos()[None, :, None, :], persistent=False)
        self.register_buffer("sin", freqs.sin()[None, :, None, :], persistent=False)
        self.lm_head = None if TIE_EMBEDDINGS else nn.Linear(dim, vocab_size, bias=False)
        self.init_weights()

    def init_weights(self):
        nn.init.normal_(self.wte.weight, std=0.02)
        for block in self.blocks:
            for lin in (block.attn.c_qkv, block.mlp.c_fc):
                nn.init.normal_(lin.weight, std=lin.in_features ** -0.5)
            nn.init.zeros_(block.attn.c_proj.weight)  # each block starts as identity
            nn.init.zeros_(block.mlp.c_proj.weight)
        if self.lm_head is not None:
            nn.init.zeros_(self.lm_head.weight)  # uniform predictions at the start
        if self.bigram is not None:
            nn.init.zeros_(self.bigram.weight)  # adds nothing until trained

    def forward(self, idx, targets=None, reduction="mean"):
        T = idx.size(1)
        cos, sin = self.cos[:, :T], self.sin[:, :T]
        x = self.wte(idx)
        if self.bigram is not None:  # the first token pairs with token 0
            prev = F.pad(idx[:, :-1], (1, 0))
            x = x + self.bigram((prev * 1000003 + idx) % BIGRAM_ROWS)
        x = rms_norm(x)
        for block in self.blocks:
            x = block(x, cos, sin)
        head = self.wte.weight if self.lm_head is None else self.lm_head.weight
        logits = F.linear(rms_norm(x), head)
        if LOGIT_SOFTCAP > 0:  # bounded logits: no runaway confidence early in training
            logits = LOGIT_SOFTCAP * torch.tanh(logits / LOGIT_SOFTCAP)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)


# ---------------------------------------------------------------------------
# Device, precision, peak FLOPS

gpu_peak_flops = {  # dense bf16 tensor-core peak, by substring of the device name
    "B200": 2250e12, "H200": 989e12, "H100": 989e12, "GH200": 989e12, "H800": 989e12,
    "A100": 312e12, "A800": 312e12, "L40S": 362e12, "L40": 181e12, "A6000": 155e12,
    "L4": 121e12, "A10": 125e12, "4090": 165e12, "3090": 71e12, "V100": 125e12, "T4": 65e12,
}


def detect_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def measure_peak_flops(device, seconds=0.3, n=1024):
    """Best fp32 matmul rate over ~0.3 s: the achievable peak of this CPU/MPS (run before
    training, not counted in training time). Makes MFU comparable across machines."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.mps.synchronize if device.type == "mps" else (lambda: None)
    for _ in range(2):  # warm up threads and caches
        a @ b
    sync()
    best, t_end = 0.0, time.time() + seconds
    while time.time() < t_end:
        t0 = time.perf_counter()
        a @ b
        sync()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def peak_flops(device):
    if device.type == "cuda":
        name = torch.cuda.get_device_name()
        for key, flops in gpu_peak_flops.items():
            if key in name:
                return flops, f"{name} bf16 table"
        return 100e12, f"{name} (not in table: assumed)"
    return measure_peak_flops(device), "measured fp32 matmul"


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 1024 / 1024
    # CPU/MPS: the process's peak resident set size (KB on Linux, bytes on macOS)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def lr_multiplier(progress):
    if progress < WARMUP_RATIO:
        return progress / WARMUP_RATIO
    if progress > 1.0 - WARMDOWN_RATIO:
        frac = (1.0 - progress) / WARMDOWN_RATIO
        return FINAL_LR_FRAC + (1.0 - FINAL_LR_FRAC) * max(0.0, frac)
    return 1.0


# ---------------------------------------------------------------------------
# Muon (MATRIX_OPTIMIZER = "muon"): momentum, then each matrix's update replaced by the
# nearest semi-orthogonal matrix, so every direction of the update moves at the same rate.


def orthogonalize(g, steps=5):
    """U V^T of g's SVD, approximately: a quintic Newton-Schulz iteration whose coefficients
    push every singular value towards 1 fast (to about 0.7..1.2, which is enough)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm() + 1e-7)  # singular values at most 1: inside the iteration's range
    wide = x.size(0) <= x.size(1)
    x = x if wide else x.T  # iterate on the smaller Gram matrix
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalized. The update is scaled to AdamW's typical RMS (0.2,
    as in Moonlight), so LEARNING_RATE and WEIGHT_DECAY mean the same for both optimizers."""

    def __init__(self, params, momentum=0.95):
        super().__init__(params, {"momentum": momentum})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, beta = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p))
                buf.lerp_(p.grad, 1 - beta)
                update = orthogonalize(p.grad.lerp(buf, beta))  # Nesterov: a look ahead
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update, alpha=-lr * 0.2 * max(p.shape) ** 0.5)


# ---------------------------------------------------------------------------
# Setup

seed = int(os.environ.get("COCKPIT_SEED", SEED))  # re-runs measure seeds, not only noise
torch.manual_seed(seed)
device = detect_device()
if device.type == "cuda":
    torch.cuda.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    autocast = torch.amp.autocast("cuda", dtype=torch.bfloat16)
    dtype_name = "bfloat16 autocast"
else:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores or 1)
    autocast = torch.amp.autocast("cpu", dtype=torch.bfloat16) if CPU_BF16 else contextlib.nullcontext()
    dtype_name = "bfloat16 autocast" if CPU_BF16 else "float32"

tokenizer = Tokenizer.from_directory()
vocab_size = tokenizer.get_vocab_size()
model = GPT(vocab_size, DEPTH, MODEL_DIM, N_HEADS, MLP_RATIO * MODEL_DIM, MAX_SEQ_LEN).to(device)
raw_model = model
num_params = sum(p.numel() for p in model.parameters())
# FLOPs per token: 6 per matmul weight (forward + backward; the tied head is a matmul,
# the embedding lookups are not, so with tying this is 6 * num_params) + attention scores.
lookups = [model.bigram] + ([] if TIE_EMBEDDINGS else [model.wte])
lookup_params = sum(m.weight.numel() for m in lookups if m is not None)
flops_per_token = 6 * (num_params - lookup_params) + 12 * DEPTH * MODEL_DIM * MAX_SEQ_LEN
peak, peak_source = peak_flops(device)

matrices = [p for p in model.blocks.parameters() if p.dim() >= 2]
others = [p for p in model.blocks.parameters() if p.dim() < 2]
embeddings = [m.weight for m in (model.wte, model.lm_head, model.bigram) if m is not None]
matrix_group = {"params": matrices, "lr": LEARNING_RATE, "weight_decay": WEIGHT_DECAY}
groups = [{"params": embeddings, "lr": EMBEDDING_LR, "weight_decay": 0.0}]
if others:
    groups.append({"params": others, "lr": LEARNING_RATE, "weight_decay": 0.0})
if MATRIX_OPTIMIZER == "muon":  # AdamW keeps the embeddings and the vectors
    optimizers = [Muon([matrix_group]), torch.optim.AdamW(
        groups, betas=(ADAM_BETA1, ADAM_BETA2), eps=1e-8, fused=device.type == "cuda")]
else:
    optimizers = [torch.optim.AdamW([matrix_group, *groups], betas=(ADAM_BETA1, ADAM_BETA2),
                                    eps=1e-8, fused=device.type == "cuda")]
for g in (g for opt in optimizers for g in opt.param_groups):
    g["initial_lr"] = g["lr"]

if device.type == "cuda":
    model = torch.compile(model)  # on CPU compilation costs startup without gains

train_loader = make_dataloader(tokenizer, BATCH_SIZE, MAX_SEQ_LEN, "train", device, seed=seed)
tokens_per_step = BATCH_SIZE * MAX_SEQ_LEN * GRAD_ACCUM_STEPS

print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})")
print(f"dtype: {dtype_name}")
print(f"data_fingerprint: {data_fingerprint(tokenizer.data_dir)}")
print(f"vocab_size: {vocab_size:,} | seq_len: {MAX_SEQ_LEN} | tokens/step: {tokens_per_step:,}")
print(f"params: {num_params:,} | depth: {DEPTH} | dim: {MODEL_DIM} | heads: {N_HEADS}")
print(f"structure: {ACTIVATION} | kv_heads: {N_KV_HEADS} | qk_norm: {QK_NORM} | "
      f"tied: {TIE_EMBEDDINGS} | softcap: {LOGIT_SOFTCAP} | matrices: {MATRIX_OPTIMIZER} | "
      f"bigram_rows: {BIGRAM_ROWS}")
print(f"flops_per_token: {flops_per_token:.4e} | peak_flops: {peak:.4e} ({peak_source})")
print(f"time_budget: {TIME_BUDGET}s | seed: {seed}")
sys.stdout.flush()

# ---------------------------------------------------------------------------
# Training loop: stops when training time (excluding the first warm-up steps, which
# include compilation on GPU) reaches TIME_BUDGET. The LR schedule follows
# progress = training_time / TIME_BUDGET, so any budget runs a complete schedule.

skip_steps = 10 if device.type == "cuda" else 2  # not timed: compile / allocator warm-up
step = 0
training_time = 0.0
smooth_loss = 0.0
last_print = 0.0
x, y = next(train_loader)
while True:
    t0 = time.time()
    for _ in range(GRAD_ACCUM_STEPS):
        with autocast:
            loss = model(x, y)
        (loss / GRAD_ACCUM_STEPS).backward()
        x, y = next(train_loader)  # prefetch the next batch while the GPU works
    progress = min(training_time / TIME_BUDGET, 1.0)
    lrm = lr_multiplier(progress)
    for opt in optimizers:
        for g in opt.param_groups:
            g["lr"] = g["initial_lr"] * lrm
    if GRAD_CLIP > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    for opt in optimizers:
        opt.step()
    model.zero_grad(set_to_none=True)

    loss_f = loss.item()  # synchronizes
    if not math.isfinite(loss_f) or loss_f > 100:
        print()
        print(f"FAIL: loss is {'nan' if math.isnan(loss_f) else f'{loss_f:g}'} at step {step}")
        sys.exit(1)
    dt = time.time() - t0
    if step >= skip_steps:
        training_time += dt

    smooth_loss = 0.9 * smooth_loss + 0.1 * loss_f
    debiased = smooth_loss / (1 - 0.9 ** (step + 1))
    tok_per_sec = int(tokens_per_step / dt)
    mfu = 100 * flops_per_token * tok_per_sec / peak
    pct = 100 * min(training_time / TIME_BUDGET, 1.0)
    remaining = max(0.0, TIME_BUDGET - training_time)
    if time.time() - last_print >= 0.1 or remaining == 0:  # at most ~10 lines/s on fast GPUs
        last_print = time.time()
        line = (f"step {step:05d} ({pct:.1f}%) | loss: {debiased:.6f} | lrm: {lrm:.2f} | dt: {dt * 1000:.0f}ms | "
                f"tok/sec: {tok_per_sec:,} | mfu: {mfu:.1f}% | epoch: {train_loader.epoch} | remaining: {remaining:.0f}s")
        print(f"\r{line:<96}", end="", flush=True)  # padded: a shorter line leaves no stale tail

    step += 1
    if step > skip_steps and training_time >= TIME_BUDGET:
        break

print()
total_tokens = step * tokens_per_step
timed_tokens = (step - skip_steps) * tokens_per_step
mfu_percent = 100 * flops_per_token * timed_tokens / training_time / peak if training_time > 0 else 0.0

# The trained model goes to cockpit, which measures it in a process of its own (by hand,
# hand_over measures it here and returns val_bpb).
val_bpb = hand_over(raw_model)

print("---")
if val_bpb is not None:
    print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {training_time:.1f}")
print(f"total_seconds:    {time.time() - t_script_start:.1f}")
print(f"peak_vram_mb:     {peak_memory_mb(device):.1f}")
print(f"mfu_percent:      {mfu_percent:.2f}")
print(f"total_tokens_M:   {total_tokens / 1e6:.1f}")
print(f"num_steps:        {step}")
print(f"num_params_M:     {num_params / 1e6:.1f}")
print(f"depth:            {DEPTH}")
