# ref_spread.py - the worst RMS ratio against precision=f64 over the edge grid, per output,
# of the default f32 path and of bf16 inputs: `/usr/bin/python3 tools/ref_spread.py GRID_DIR`.
import sys; sys.path.insert(0, "python"); import numpy as np, lolcats, lolcats.grid
ops = {"hybrid_attention": lolcats.hybrid_attention, "softmax_attention": lolcats.softmax_attention,
       "linear_attention": lolcats.linear_attention}
w32, wbf = {}, {}
for c in lolcats.grid.cases(sys.argv[1]):
    bf = ops[c.op](precision="bf16", **c.args)
    for d, test in ((w32, c.expected), (wbf, bf)):
        for k, m in lolcats.compare(c.expected_f64, test).items():
            if np.sqrt(np.mean(np.square(c.expected_f64[k].astype(np.float64)))) > 1e-6:
                d[k] = max(d.get(k, 0), m["rms_ratio"])
for k in w32: print("| `%s` | %.1e | %.1e |" % (k, w32[k], wbf[k]))
