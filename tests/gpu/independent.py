"""Independent ceilings for checking the benchmark notebook on a real GPU.

Deliberately shares no code with the notebook: plain CUDA-event timing of an 8192^3 bf16 product on
random inputs (median of 20 after warm-up, three input sets rotated) and a 1 GiB / 2 GiB
device-to-device copy counted as bytes read + written. Prints and writes JSON.
"""

import json
import statistics
import sys

import torch


def events_median(fn, iters=20, warm=10):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    return statistics.median(ts)


def main(out):
    dev = torch.device("cuda")
    n = 8192
    sets = [
        (torch.randn(n, n, device=dev, dtype=torch.bfloat16), torch.randn(n, n, device=dev, dtype=torch.bfloat16))
        for _ in range(3)
    ]
    c = torch.empty(n, n, device=dev, dtype=torch.bfloat16)
    k = [0]

    def mm():
        x, y = sets[k[0] % 3]
        k[0] += 1
        torch.matmul(x, y, out=c)

    t = events_median(mm)
    res = {"gpu": torch.cuda.get_device_name(0), "bf16_8192_tflops": 2 * n**3 / t / 1e12}
    sets.clear()  # free the inputs before the copy test
    c = None
    for gib in (1, 2):
        src = torch.randn(gib << 28, device=dev)  # gib GiB of float32
        dst = torch.empty_like(src)
        t = events_median(lambda dst=dst, src=src: dst.copy_(src))
        res[f"copy_{gib}GiB_GBps"] = 2 * src.numel() * 4 / t / 1e9
        del src, dst
    torch.cuda.empty_cache()
    print(json.dumps(res))
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main(sys.argv[1])
