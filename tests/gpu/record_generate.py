"""Record token-by-token generation loops on a real GPU, through the real probe (needs CUDA).

    python tests/gpu/record_generate.py OUTDIR [SCENARIO ...]     # ~1 min

Issue 19 item 3: a decoder generates 16 sequences at a time, token by token, its KV cache grown
by ``torch.cat`` in every layer (the concatenation holds the old and the new cache for a
moment) and every token's logits collected (``scores.append``), both dropped when a sequence
ends: a sawtooth, one tooth a sequence. ``generate_leak*`` keep every finished sequence's
caches, so the floor rises one cache a sequence until the process cap (set after the probe
started, sized for ~20 sequences) is reached. The files are ``record_round2.py``'s: the
probe's own ``NAME.iters.jsonl`` (forward records, one iteration a model call) with its
``{"oom": true}`` line, ``NAME.nvml.jsonl`` and one ``meta.jsonl`` line a scenario, positions
in iterations (tokens); ``onset`` is the end of the first sequence, whose cache is the first
one kept; ``period`` the tokens a sequence (null: variable).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import record_round2 as R  # noqa: E402  (the recorder, its NVML sampler and meta lines)

MiB = 1 << 20
D_MODEL, LAYERS, HEADS, VOCAB, BATCH, PROMPT = 1024, 8, 16, 32000, 16, 16
#: one token's K and V in all layers (bf16): 512 KiB; its logits (fp32): 2 MiB
KV_BYTES = 2 * LAYERS * BATCH * D_MODEL * 2
SEQ = 120
SEQUENCES_TO_OOM = 20

R.SCENARIOS.update(
    {
        "generate_leak": dict(
            leak=True,
            onset=SEQ,
            rate=KV_BYTES,
            iters=6000,
            seconds=60,
            kind="forward",
            step_s=0.006,
            period=SEQ,
            note="token-by-token generation (8-layer decoder, batch 16, KV cache grown by torch.cat, "
            "logits collected), 120 tokens a sequence; keeps every finished sequence's KV cache "
            "(60 MiB) until OOM",
        ),
        "generate_leak_varlen": dict(
            leak=True,
            onset=None,  # set to the first sequence's length
            rate=KV_BYTES,
            iters=6000,
            seconds=60,
            kind="forward",
            step_s=0.006,
            period=None,
            note="the same with sequences of 60-180 tokens (an EOS): keeps every finished sequence's "
            "KV cache until OOM",
        ),
        "generate_healthy_varlen": dict(
            leak=False,
            onset=None,
            rate=0,
            iters=3000,
            seconds=30,
            kind="forward",
            step_s=0.006,
            period=None,
            note="the same generation with sequences of 40-200 tokens and nothing kept",
        ),
    }
)


def run_one(name: str, outdir: str) -> None:
    import torch

    nn = torch.nn
    F = torch.nn.functional
    torch.manual_seed(0)
    dev = torch.device("cuda")

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
            self.out = nn.Linear(D_MODEL, D_MODEL)
            self.mlp = nn.Sequential(nn.Linear(D_MODEL, 4 * D_MODEL), nn.GELU(), nn.Linear(4 * D_MODEL, D_MODEL))

        def forward(self, x, cache):
            b, t, _ = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            if cache is not None:
                k = torch.cat([cache[0], k], dim=1)  # the cache grows by one token: a new tensor
                v = torch.cat([cache[1], v], dim=1)

            def heads(z):
                return z.view(b, z.shape[1], HEADS, D_MODEL // HEADS).transpose(1, 2)

            a = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=cache is None and t > 1)
            x = x + self.out(a.transpose(1, 2).reshape(b, t, D_MODEL))
            return x + self.mlp(x), (k, v)

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(VOCAB, D_MODEL)
            self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
            self.head = nn.Linear(D_MODEL, VOCAB)

        def forward(self, tok, caches):
            x = self.emb(tok)
            new = []
            for layer, cache in zip(self.layers, caches):
                x, kv = layer(x, cache)
                new.append(kv)
            return self.head(x[:, -1]).float(), new

    model = Decoder().to(dev, dtype=torch.bfloat16).eval()
    rec = R.Recorder(name, outdir)
    spec = rec.spec
    gen = torch.Generator().manual_seed(3)
    lo, hi = (60, 181) if name == "generate_leak_varlen" else (40, 201)

    def length() -> int:
        return SEQ if name == "generate_leak" else int(torch.randint(lo, hi, (), generator=gen))

    tooth = max(SEQ, hi) * (KV_BYTES + BATCH * VOCAB * 4)
    cap = torch.cuda.memory_allocated() + SEQUENCES_TO_OOM * SEQ * KV_BYTES + tooth + 256 * MiB
    total = torch.cuda.get_device_properties(0).total_memory
    spec["frac"] = cap / total
    kept: list = []
    state: dict = {"caches": [None] * LAYERS, "scores": [], "left": length(), "tok": None, "seq": 0}
    if spec["onset"] is None and spec["leak"]:
        spec["onset"] = state["left"]

    def body(k: int) -> None:
        if k == 0:
            torch.cuda.set_per_process_memory_fraction(spec["frac"])  # read by the probe every record
        with torch.no_grad():
            if state["tok"] is None:  # a new sequence: its prompt
                state["tok"] = torch.randint(0, VOCAB, (BATCH, PROMPT), device=dev)
            logits, state["caches"] = model(state["tok"], state["caches"])
            state["scores"].append(logits)  # output_scores: every token's logits, until the end
            state["tok"] = logits.argmax(-1, keepdim=True)
            state["left"] -= 1
            if state["left"] == 0:  # the sequence ends
                if spec["leak"]:
                    kept.append(state["caches"])  # the leak: its KV cache is kept
                state["caches"], state["scores"], state["tok"] = [None] * LAYERS, [], None
                state["left"] = length()
                state["seq"] += 1

    rec.loop(body)
    rec.extra = {"period": spec["period"], "sequences": state["seq"], "kv_bytes_per_token": KV_BYTES}
    kept.clear()
    rec.finish()


def main() -> int:
    out = sys.argv[1]
    names = sys.argv[2:] or ["generate_leak", "generate_leak_varlen", "generate_healthy_varlen"]
    if len(names) == 1 and os.environ.get("RECORD_CHILD"):
        run_one(names[0], out)
        return 0
    os.makedirs(out, exist_ok=True)
    failed = []
    for n in names:
        t0 = time.time()
        rc = subprocess.call([sys.executable, __file__, out, n], env={**os.environ, "RECORD_CHILD": "1"})
        print(f"{n}: rc {rc} in {time.time() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(n)
    print("failed:", failed or "none")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
