"""bench_torch.py - PyTorch's training throughput on the same GPT-2 as edgetrain's bench:
same shapes, vocab 65 padded to 128 with a tied embedding, GELU(tanh), pre-LayerNorm,
AdamW (fused foreach where available), fp32, random tokens. Run with Debian's
/usr/bin/python3 (python3-torch).
usage: bench_torch.py NAME LAYERS HEADS CHANNELS T B THREADS STEPS [LABEL]
prints: train pytorch NAME LABEL TOK_S STEP_MS PEAK_RSS_KB, where LABEL (default THREADS)
names the thread setting (bench/run.sh passes tTbB: T torch threads, B OpenBLAS threads)"""
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.NH = NH

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, C // self.NH).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.NH)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, Vp, T, L, NH, C):
        super().__init__()
        self.V = V
        self.wte, self.wpe = nn.Embedding(Vp, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, NH) for _ in range(L))
        self.lnf = nn.LayerNorm(C)

    def forward(self, idx, tgt):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits[..., : self.V].reshape(-1, self.V), tgt.reshape(-1))


def main():
    name = sys.argv[1]
    L, NH, C, T, B, th, steps = (int(a) for a in sys.argv[2:9])
    label = sys.argv[9] if len(sys.argv) > 9 else str(th)
    torch.set_num_threads(th)
    torch.manual_seed(0)
    m = GPT(65, 128, T, L, NH, C)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1)
    times = []
    for s in range(steps + 2):
        idx = torch.randint(0, 65, (B, T))
        tgt = torch.randint(0, 65, (B, T))
        t0 = time.perf_counter()
        loss = m(idx, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"train pytorch {name} {label} {B * T / med:.1f} {med * 1e3:.2f} {rss}")


if __name__ == "__main__":
    main()
