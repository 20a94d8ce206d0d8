#!/usr/bin/env python3
"""eval_reference.py - an independent fp32 PyTorch implementation of `lolcats eval
--task` scoring, to check the C per item (run by hand, never in CI).

Its own task readers (the files of ../shared/data/eval, as its README describes
them), its own tokenizer (SentencePiece: the model directory's tokenizer.model),
the harness's pair rule, and a full forward of every (context + continuation)
from scratch: the Llama teacher and the hybrid model of tools/orig_recipe.py (the
original's quadratic masked forms; the C code is not used). Writes one JSON line
per item in the format of `lolcats eval --dump`, and with --compare DUMP reports
the largest relative log-likelihood difference and whether the chosen answers
agree.

The linearized model is fed as `lolcats eval` feeds it: the first segment (the
MMLU few-shot header when it tokenizes as a prefix, else the context) is a
prefill with the checkpoint's masks (tk terraced / sw), every later token follows
the decode rule (softmax over the w most recent keys, linear over the older
ones). Here that is one forward with per-row masks.

    /usr/bin/python3 tools/eval_reference.py --model ../shared/models/alpaca-llama-25m \\
        --data-dir ../shared/data/eval --task piqa --limit 200 [--lolcats CKPT] \\
        --out build/ref.jsonl --compare build/dump.jsonl

Needs python3-torch and python3-sentencepiece (Debian) and numpy. `--device cuda`
runs the same fp32 forward on a GPU (TF32 off); `--prefill whole` feeds each
context + continuation as one prefill (as `lolcats eval --prefill whole`);
`--compare-only` compares an
existing --out file with a dump without scoring again.
"""
import argparse
import csv
import json
import math
import os
import re
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orig_recipe as R  # noqa: E402  (Llama, hybrid attention, checkpoint reader, the original's masks)

torch.set_grad_enabled(False)


# ---------------------------------------------------------------------------
# tasks: list of items {reqs: [(ctx, cont, norm_len)], gold, subject, header}
# ---------------------------------------------------------------------------
def jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(l) for l in f if l.strip()]


def item(ctxs, delim, choices, gold, subject=None, header=''):
    if isinstance(ctxs, str):
        ctxs = [ctxs] * len(choices)
    return {'reqs': [(c, delim + ch, len(ch)) for c, ch in zip(ctxs, choices)], 'gold': gold,
            'subject': subject, 'header': header}


def hellaswag_pre(text):
    text = text.strip()
    text = text.replace(' [title]', '. ')
    text = re.sub('\\[.*?\\]', '', text)
    return text.replace('  ', ' ')


def mmlu_question(row):
    q = row[0].strip()
    return q + ''.join('\n%s. %s' % (L, c) for L, c in zip('ABCD', row[1:5])) + '\nAnswer:'


def load_task(name, d, limit, shots, subjects):
    out = []
    if name == 'piqa':
        labels = [int(l) for l in open(os.path.join(d, 'piqa/valid-labels.lst')).read().split()]
        for r, g in zip(jsonl(os.path.join(d, 'piqa/valid.jsonl')), labels):
            out.append(item('Question: %s\nAnswer:' % r['goal'], ' ', [r['sol1'], r['sol2']], g))
    elif name in ('arc_easy', 'arc_challenge'):
        p = os.path.join(d, 'arc/arc_easy.test.json' if name == 'arc_easy' else 'arc/arc_challenge.test.jsonl')
        recs = json.load(open(p)) if name == 'arc_easy' else jsonl(p)
        for r in recs:
            out.append(item('Question: %s\nAnswer:' % r['question'], ' ', r['choices']['text'],
                            r['choices']['label'].index(r['answerKey'])))
    elif name == 'hellaswag':
        lines = open(os.path.join(d, 'hellaswag/hellaswag_val.txt'), encoding='utf-8').read().split('\n')
        for i in range(0, len(lines) - 5, 6):
            out.append(item(hellaswag_pre(lines[i]), ' ', [hellaswag_pre(e) for e in lines[i + 2:i + 6]],
                            int(lines[i + 1])))
    elif name == 'winogrande':
        for r in jsonl(os.path.join(d, 'llm-foundry/winogrande.jsonl')):
            out.append(item(r['context_options'], ' ', [r['continuation']] * 2, r['gold']))
    elif name == 'lambada':
        for r in jsonl(os.path.join(d, 'llm-foundry/lambada_openai.jsonl')):
            out.append(item(r['context'], ' ', [r['continuation']], 0))
    elif name == 'copa':
        for r in jsonl(os.path.join(d, 'llm-foundry/copa.jsonl')):
            q = re.sub(', (because|therefore)$', ' \\1', r['query'])
            out.append(item(q, '  ', r['choices'], r['gold']))
    elif name == 'openbookqa':
        for r in jsonl(os.path.join(d, 'llm-foundry/openbook_qa.jsonl')):
            out.append(item(r['query'], ' ', r['choices'], r['gold']))
    elif name == 'mmlu':
        subs = sorted(f[:-9] for f in os.listdir(os.path.join(d, 'mmlu/test')) if f.endswith('_test.csv'))
        if subjects:
            subs = subs[:subjects]
        for s in subs:
            dev = list(csv.reader(open(os.path.join(d, 'mmlu/dev/%s_dev.csv' % s), newline='', encoding='utf-8')))[1:]
            test = list(csv.reader(open(os.path.join(d, 'mmlu/test/%s_test.csv' % s), newline='', encoding='utf-8')))[1:]
            head = 'The following are multiple choice questions (with answers) about %s.\n\n' % s.replace('_', ' ')
            head += ''.join(mmlu_question(r) + ' ' + 'ABCD'[int(r[5])] + '\n\n' for r in dev[:shots])
            for r in test[:limit] if limit else test:
                out.append(item(head + mmlu_question(r), ' ', ['A', 'B', 'C', 'D'], int(r[5]), s, head))
        return out
    return out[:limit] if limit else out


# ---------------------------------------------------------------------------
# tokenization: the harness's _encode_pair
# ---------------------------------------------------------------------------
class Tok:
    def __init__(self, model_dir, bos):
        self.bos = bos
        try:
            import sentencepiece
            self.sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, 'tokenizer.model'))
            self.bos_id = self.sp.bos_id()
        except ImportError:   # the repo's own Python BPE over tokenizer.json (slower)
            from gen_model_ref import SpmBpe
            self.sp = None
            self.bpe = SpmBpe(os.path.join(model_dir, 'tokenizer.json'))
            self.bos_id = self.bpe.bos
        self.memo = {}

    def enc(self, s):
        if s not in self.memo:
            if len(self.memo) > 64:
                self.memo.clear()
            self.memo[s] = self.sp.encode(s) if self.sp else self.bpe.encode(s, bos=False)
        return ([self.bos_id] if self.bos else []) + self.memo[s]

    def pair(self, ctx, cont):
        if ctx == '':
            return [self.bos_id], self.enc(cont)
        n = len(ctx) - len(ctx.rstrip())
        if n:
            cont = ctx[-n:] + cont
            ctx = ctx[:-n]
        whole = self.enc(ctx + cont)
        c = self.enc(ctx)
        return c, whole[len(c):]


# ---------------------------------------------------------------------------
# forward: teacher (orig_recipe.forward_lm) or the hybrid with segment masks
# ---------------------------------------------------------------------------
def seg_masks(lp, T, s0, dev='cpu'):
    """rows < s0: the checkpoint's prefill masks over s0 tokens; rows >= s0: the
    decode rule (window: i - w < j <= i; linear: j <= i - w)."""
    w = lp.window
    mw = torch.zeros((T, T), dtype=torch.bool)
    ml = torch.zeros((T, T), dtype=torch.bool)
    a, b = (R.masks_tk if lp.variant == 'tk' else R.masks_sw)(w, s0, s0)
    mw[:s0, :s0] = a
    ml[:s0, :s0] = b
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    dec = i >= s0
    mw |= dec & (j <= i) & (j > i - w)
    ml |= dec & (j <= i - w)
    return mw.to(dev), ml.to(dev)


def hybrid(q, k, v, Wq, Wk, wf, mw, ml):
    fq, fk = R.feature_map(q, Wq), R.feature_map(k, Wk)
    gamma = torch.sigmoid(wf).view(-1, 1, 1)
    s = (q @ k.transpose(-1, -2)) * (k.shape[-1] ** -0.5)
    s = s.masked_fill(~mw, R.HYBRID_MASK_VALUE)
    smax = torch.amax(s, dim=-1, keepdim=True)
    a_sm = gamma * torch.exp(s - smax)
    a_ln = (fq @ fk.transpose(-1, -2)).masked_fill(~ml, 0)
    return ((a_sm + a_ln) @ v) / (a_sm.sum(-1, keepdim=True) + a_ln.sum(-1, keepdim=True))


def forward(m, ids, lp, s0):
    ids = torch.tensor(ids, dtype=torch.long, device=m.device)
    if lp is None:
        return R.forward_lm(m, ids)
    mw, ml = seg_masks(lp, len(ids), s0, m.device)
    x = m.embed(ids)
    for l in range(m.L):
        q, k, v = m.qkv(l, x, lp.lora, lp.scale())
        x = m.out(l, x, hybrid(q, k, v, lp.fq[l], lp.fk[l], lp.wf[l], mw, ml), lp.lora, lp.scale())
    return m.logits(x)


def score(m, tok, lp, ctx, cont, header, maxlen, cache, whole=False):
    c, k = tok.pair(ctx, cont)
    if not k:
        return 0.0, 0, 1
    s0 = len(c)
    if len(c) + len(k) > maxlen + 1:
        c = c[len(c) + len(k) - (maxlen + 1):]
        s0 = len(c)
    elif header:
        h = tok.enc(header)
        if 0 < len(h) < len(c) and c[:len(h)] == h:
            s0 = len(h)
    inp = c + k[:-1]
    if whole:   # --prefill whole: the whole sequence is one prefill with the checkpoint's masks
        s0 = len(inp)
    key = (tuple(inp), s0)
    if key not in cache or cache.get('naive'):
        naive = cache.get('naive')
        cache.clear()
        if naive:
            cache['naive'] = True
        cache[key] = torch.log_softmax(forward(m, inp, lp, s0).double(), dim=-1)
    lsm = cache[key][len(c) - 1:]
    tgt = torch.tensor(k, device=lsm.device)
    ll = float(lsm[torch.arange(len(k), device=lsm.device), tgt].sum())
    greedy = int(bool((lsm.argmax(-1) == tgt).all()))
    return ll, len(k), greedy


def first_max(x):
    b = 0
    for i in range(1, len(x)):
        if x[i] > x[b]:
            b = i
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--data-dir', required=True)
    ap.add_argument('--task', required=True)
    ap.add_argument('--limit', type=int, default=0)
    ap.add_argument('--subjects', type=int, default=0)
    ap.add_argument('--num-fewshot', type=int, default=5)
    ap.add_argument('--lolcats', default=None)
    ap.add_argument('--bos', action='store_true')
    ap.add_argument('--out', required=True)
    ap.add_argument('--compare', default=None, help='a `lolcats eval --dump` file of the same run')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--naive', action='store_true', help='no reuse at all: a full forward per continuation')
    ap.add_argument('--device', default='cpu', help='cpu or cuda (fp32, TF32 off)')
    ap.add_argument('--prefill', choices=('segments', 'whole'), default='segments',
                    help='linearized model: as `lolcats eval --prefill`')
    ap.add_argument('--compare-only', action='store_true', help='score nothing: compare an existing --out with --compare')
    a = ap.parse_args()
    if a.compare_only:
        compare(a.out, a.compare)
        return
    torch.set_num_threads(a.threads)
    if a.device != 'cpu':   # full fp32 products, as on the CPU
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision('highest')
    m = R.Llama(a.model, a.device)
    lp = R.LolcatsParams.load(a.lolcats, m) if a.lolcats else None
    tok = Tok(a.model, a.bos)
    out = open(a.out, 'w')
    for name in a.task.split(','):
        items = load_task(name, a.data_dir, a.limit, a.num_fewshot, a.subjects)
        cache = {'naive': True} if a.naive else {}
        t0 = time.time()
        for i, it in enumerate(items):
            sc = [score(m, tok, lp, c, k, it['header'], m.max_pos, cache, a.prefill == 'whole')
                  for c, k, _ in it['reqs']]
            rec = {'task': name, 'item': i, 'll': [s[0] for s in sc], 'ntok': [s[1] for s in sc]}
            if name == 'lambada':
                rec['greedy'] = sc[0][2]
            else:
                rec['pick'] = first_max([s[0] for s in sc])
                rec['pick_norm'] = first_max([s[0] / max(n, 1) for s, (_, _, n) in zip(sc, it['reqs'])])
                rec['gold'] = it['gold']
            out.write(json.dumps(rec) + '\n')
            out.flush()
        dt = time.time() - t0
        print('%s: %d items in %.2f s, items_per_s %.4f' % (name, len(items), dt, len(items) / max(dt, 1e-9)))
    out.close()
    if a.compare:
        compare(a.out, a.compare)


def read_lines(path):
    out = []
    for l in open(path):
        try:
            out.append(json.loads(l))
        except ValueError:   # a line still being written
            pass
    return out


def compare(ref_path, dump_path):
    ref = {(r['task'], r['item']): r for r in read_lines(ref_path)}
    worst, n, bad = 0.0, 0, 0
    per = {}
    for r in read_lines(dump_path):
        k = (r['task'], r['item'])
        if k not in ref:
            continue
        q = ref[k]
        t = per.setdefault(r['task'], [0, 0.0, 0, 0])
        for x, y, nx, ny in zip(r['ll'], q['ll'], r['ntok'], q['ntok']):
            rel = abs(x - y) / max(abs(y), 1e-30)
            worst = max(worst, rel)
            t[1] = max(t[1], rel)
            if nx != ny:
                bad += 1
        same = all(r.get(f) == q.get(f) for f in ('pick', 'pick_norm', 'greedy'))
        t[0] += 1
        t[2] += 0 if same else 1
        t[3] += 1 if r.get('pick', r.get('greedy')) == r.get('gold', 1) else 0
        n += 1
    for name, (cnt, w, dis, hits) in per.items():
        print('%-14s items %4d  max rel ll diff %.2e  decisions differing %d' % (name, cnt, w, dis))
    print('all: %d items, max rel diff %.2e, token-count mismatches %d' % (n, worst, bad))


if __name__ == '__main__':
    main()
