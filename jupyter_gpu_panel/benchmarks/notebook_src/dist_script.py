# Multi-GPU part of the benchmark notebook, started with torchrun (one process per GPU).
# The notebook writes this file (with the SmallNet model above it) and runs
#   python -m torch.distributed.run --standalone --nproc_per_node=N this_file.py --out result.json
import argparse
import json
import os
import time

import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="nccl")
    ap.add_argument("--min-bytes", type=int, default=1 << 20)
    ap.add_argument("--max-bytes", type=int, default=1 << 30)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--train-batch", type=int, default=256)
    ap.add_argument("--train-image", type=int, default=64)
    ap.add_argument("--train-width", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=20)
    args = ap.parse_args()

    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = args.backend == "nccl"
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    # correctness first: every rank contributes rank + 1, the sum must be n (n + 1) / 2 everywhere
    t = torch.full((1024,), float(rank + 1), device=device)
    dist.all_reduce(t)
    ok = bool(torch.all(t == world * (world + 1) / 2))

    sweep = []
    nbytes = args.min_bytes
    while nbytes <= args.max_bytes:
        buf = torch.randn(nbytes // 4, device=device)
        for _ in range(args.warmup):
            dist.all_reduce(buf)
        sync()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(args.iters):
            dist.all_reduce(buf)
        sync()
        elapsed = torch.tensor([(time.perf_counter() - t0) / args.iters], device=device, dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
        sec = float(elapsed)
        algbw = nbytes / sec / 1e9
        sweep.append(
            {"bytes": nbytes, "time_us": sec * 1e6, "algbw_GBps": algbw, "busbw_GBps": algbw * 2 * (world - 1) / world}
        )
        del buf
        nbytes *= 4

    # data-parallel training, same per-GPU batch as the single-GPU run (weak scaling)
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(0)
    model = SmallNet(args.train_width).to(device).to(memory_format=torch.channels_last)
    ddp = DDP(model, device_ids=[local] if cuda else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    amp = torch.bfloat16 if (not cuda or torch.cuda.get_device_capability(device) >= (8, 0)) else torch.float16
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    x, y = synthetic_batch(args.train_batch, args.train_image, device)
    torch.backends.cudnn.benchmark = cuda

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp):
            loss = torch.nn.functional.cross_entropy(ddp(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    for _ in range(3):
        step()
    sync()
    times = []
    for _ in range(args.train_steps):
        dist.barrier()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = torch.tensor([times[len(times) // 2]], device=device, dtype=torch.float64)
    dist.all_reduce(med, op=dist.ReduceOp.MAX)
    train = {
        "per_gpu_batch": args.train_batch,
        "step_ms": float(med) * 1e3,
        "samples_per_s": world * args.train_batch / float(med),
        "amp": str(amp)[6:],
    }

    if rank == 0:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "world_size": world,
                    "backend": args.backend,
                    "correct": ok,
                    "allreduce": sweep,
                    "training": train,
                    "nccl_version": ".".join(map(str, torch.cuda.nccl.version())) if cuda else None,
                },
                f,
            )
    # every rank done before any tears down: a rank that closes its connections while a peer
    # still receives the last all-reduce's message makes gloo abort that peer (SIGABRT)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
