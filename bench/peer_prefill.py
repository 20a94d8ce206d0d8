#!/usr/bin/python3
"""bench/peer_prefill.py - the PyTorch peer of bench_prefill.c (b): the teacher
forward of N tokens through a Hugging Face Llama directory plus the NLL of each
next token (log-sum-exp in float64, as tools/orig_recipe.py's score_held), with
the model code of tools/orig_recipe.py (float32 weights). Prints one JSON line
{"time_s": best of --reps after a warm-up, "nll": mean NLL}. Same token stream
as bench_prefill.c is not needed: the time does not depend on the ids."""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
from orig_recipe import Llama, forward_lm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--n', type=int, default=1024)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--reps', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = Llama(a.model, 'cpu')
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(3, m.vocab, (a.n + 1,), generator=g)
    inp, tgt = ids[:-1], ids[1:]
    best, nll = None, 0.0
    for r in range(a.reps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            lg = forward_lm(m, inp).double()
            tok = torch.logsumexp(lg, dim=-1) - lg.gather(1, tgt[:, None]).squeeze(1)
            nll = float(tok.mean())
        t = time.perf_counter() - t0
        if r and (best is None or t < best):
            best = t
    blas = '?'
    try:  # the BLAS library torch runs on (Debian: the libblas.so.3 alternative)
        libs = sorted({ln.split()[-1] for ln in open('/proc/self/maps') if 'blas' in ln.split()[-1]})
        blas = ' '.join(os.path.realpath(x) for x in libs) or 'none found'
    except OSError:
        pass
    print(json.dumps({"time_s": best, "nll": nll, "blas": blas}))


if __name__ == '__main__':
    main()
