"""Compare the notebook's bf16 matmul and device copy with the independent measurements (5 % rule)."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
pre = json.loads((out / "independent_pre.json").read_text())
post = json.loads((out / "independent_post.json").read_text()) if (out / "independent_post.json").exists() else pre
rows = []
for stem in ("gpu-benchmark", "gpu-benchmark-quick"):
    p = out / f"{stem}.results.json"
    if not p.exists():
        print(f"{stem}: no results")
        continue
    r = json.loads(p.read_text())
    wall = (out / f"{stem}.wall_s").read_text().strip() if (out / f"{stem}.wall_s").exists() else "?"
    print(f"{stem}: errors {r['errors']}; wall {wall} s; in-notebook elapsed {r.get('elapsed_s')} s")
    bf = [m for m in r.get("matmul", []) if m.get("dtype") == "bf16" and m.get("n") == 8192 and "tflops" in m]
    ind_mm = [pre["bf16_8192_tflops"], post["bf16_8192_tflops"]]
    ind_cp = [max(pre["copy_1GiB_GBps"], pre["copy_2GiB_GBps"]), max(post["copy_1GiB_GBps"], post["copy_2GiB_GBps"])]
    if bf:
        v = bf[0]["tflops"]
        rows.append((stem, "bf16 8192^3 TFLOP/s", v, ind_mm, min(abs(v / x - 1) for x in ind_mm) * 100))
    if r.get("copy"):
        v = r["copy"]["GBps"]
        rows.append(
            (stem, f"copy {r['copy']['bytes'] >> 20} MiB GB/s", v, ind_cp, min(abs(v / x - 1) for x in ind_cp) * 100)
        )
for stem, what, v, ind, dev in rows:
    print(
        f"{stem:22} {what:24} notebook {v:8.1f}  independent pre/post {ind[0]:8.1f} / {ind[1]:8.1f}  "
        f"diff {dev:4.1f} %  {'OK' if dev <= 5 else 'OVER 5%'}"
    )
