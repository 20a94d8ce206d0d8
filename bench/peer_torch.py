"""peer_torch.py - the PyTorch peers timed by bench/bench.c, one size per fresh
process so that the peak RSS belongs to that size alone.

  --kind hybrid   the original's quadratic hybrid attention (tk masks, Hedgehog
                  feature maps), re-implemented from docs/LOLCATS_MATH.md in plain
                  autograd: forward + backward w.r.t. q, k, v, both feature-map
                  weights and the window factors.
  --kind softmax  torch.nn.functional.scaled_dot_product_attention (causal) when
                  this torch has it; torch 1.13 does not, so plain causal softmax
                  attention (q k^T / sqrt(D), masked_fill, softmax, @ v) instead.
  --kind step     one attention-transfer step of a Llama-3-8B-sized layer
                  (H=32, Hk=8, D=128, f=64, N=--N): the teacher's causal softmax
                  output without gradients, the student hybrid on the same q, k, v
                  (k and v repeated to the query heads as the original does), MSE
                  x 1000, backward to the feature maps and window factors, AdamW.

Memory: inputs (q, k, v, dy) are made before the baseline is taken, so peak_mb
counts what the computation itself allocates: outputs, gradients, temporaries.

Prints one JSON line: time_s (best of --reps), peak_mb (ru_maxrss minus the RSS
once the inputs exist), note.
Run with Debian's /usr/bin/python3 (python3-torch)."""
import argparse, json, resource, time

import torch


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def tk_masks(n, w, device):
    """window / linear masks of the terraced (tk) variant, spec section 6"""
    i = torch.arange(n, device=device)
    nn_ = w * ((n + w - 1) // w)
    blk = (i + (nn_ - n)) // w
    causal = i[None, :] <= i[:, None]
    bq, bk = blk[:, None], blk[None, :]
    if n <= w:  # the original's quirk: both masks all-true on causal keys
        return causal, causal
    win = causal & ((bk == bq) | (bk == bq - 1))
    lin = causal & (bk < bq - 1)
    return win, lin


def hedgehog(x, w):
    z = torch.einsum("hdf,bhld->bhlf", w, x)
    return torch.cat([torch.softmax(z, -1), torch.softmax(-z, -1)], -1).clamp(min=1e-12)


def hybrid(q, k, v, wq, wk, wf, w):
    fq, fk = hedgehog(q, wq), hedgehog(k, wk)
    n, d = q.shape[-2], q.shape[-1]
    mw, ml = tk_masks(n, w, q.device)
    a_sm = torch.einsum("bhmd,bhnd->bhmn", q, k) * (d ** -0.5)
    a_sm = a_sm.masked_fill(~mw, -1e8)
    a_max = torch.amax(a_sm, dim=-1, keepdim=True)
    gam = torch.sigmoid(wf)
    a_sm = gam * torch.exp(a_sm - a_max) * mw
    a_ln = torch.einsum("bhmf,bhnf->bhmn", fq, fk).masked_fill(~ml, 0)
    den = a_sm.sum(-1, keepdim=True) + a_ln.sum(-1, keepdim=True)
    y = torch.einsum("bhmn,bhnd->bhmd", a_sm + a_ln, v) / den
    return y


def softmax_attn(q, k, v):
    f = getattr(torch.nn.functional, "scaled_dot_product_attention", None)
    if f is not None:
        return f(q, k, v, is_causal=True)
    n, d = q.shape[-2], q.shape[-1]
    s = (q @ k.transpose(-1, -2)) * (d ** -0.5)
    mask = torch.ones(n, n, dtype=torch.bool).triu(1)
    return torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v


def repeat_kv(x, rep):
    b, hk, n, d = x.shape
    return x[:, :, None].expand(b, hk, rep, n, d).reshape(b, hk * rep, n, d)


def transfer_step(q, k, v, wq, wk, wf, opt, w):
    rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, rep), repeat_kv(v, rep)
    with torch.no_grad():
        y_true = softmax_attn(q, k, v)
    y = hybrid(q, k, v, wq, wk, wf, w)
    loss = 1000.0 * torch.nn.functional.mse_loss(y, y_true)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="hybrid")
    ap.add_argument("--N", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    step = a.kind == "step"
    H, Hk, D, f, w = (32, 8, 128, 64, 64) if step else (8, 8, 64, 64, 64)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, H, a.N, D, generator=g, requires_grad=not step)
    k = torch.randn(1, Hk, a.N, D, generator=g, requires_grad=not step)
    v = torch.randn(1, Hk, a.N, D, generator=g, requires_grad=not step)
    dy = torch.randn(1, H, a.N, D, generator=g)
    wq = (0.1 * torch.randn(H, D, f, generator=g)).requires_grad_()
    wk = (0.1 * torch.randn(H, D, f, generator=g)).requires_grad_()
    wf = torch.randn(1, H, 1, 1, generator=g).requires_grad_()
    best = float("inf")
    if step:
        opt = torch.optim.AdamW([wq, wk, wf], lr=1e-2, weight_decay=0.0)
        transfer_step(q[:, :, :64], k[:, :, :64], v[:, :, :64], wq, wk, wf, opt, w)  # warm-up
        base = rss_mb()
        for _ in range(a.reps):
            t0 = time.perf_counter()
            transfer_step(q, k, v, wq, wk, wf, opt, w)
            best = min(best, time.perf_counter() - t0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps({"kind": a.kind, "N": a.N, "threads": a.threads, "time_s": best,
                          "peak_mb": peak - base, "note": ""}))
        return
    base = rss_mb()
    # warm-up on a small problem (first-call overheads stay out of the timing)
    sq = q[:, :, :64].detach().requires_grad_()
    (hybrid(sq, sq, sq, wq, wk, wf, w) if a.kind == "hybrid" else softmax_attn(sq, sq, sq)).sum().backward()
    for _ in range(a.reps):
        for t in (q, k, v, wq, wk, wf):
            t.grad = None
        t0 = time.perf_counter()
        if a.kind == "hybrid":
            y = hybrid(q, k, v, wq, wk, wf, w)
        else:
            y = softmax_attn(q, k, v)
        y.backward(dy)
        best = min(best, time.perf_counter() - t0)
        del y
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    note = ""
    if a.kind != "hybrid":
        note = ("torch.nn.functional.scaled_dot_product_attention"
                if hasattr(torch.nn.functional, "scaled_dot_product_attention")
                else "torch %s has no scaled_dot_product_attention: plain causal softmax "
                     "attention timed instead" % torch.__version__)
    print(json.dumps({"kind": a.kind, "N": a.N, "threads": a.threads, "time_s": best,
                      "peak_mb": peak - base, "note": note}))


if __name__ == "__main__":
    main()
