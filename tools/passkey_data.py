#!/usr/bin/python3
"""passkey_data.py - an Alpaca JSONL of passkey-retrieval items (plus ordinary
Alpaca records) to teach a teacher the task `lolcats eval --task passkey`
scores, with the eval's own wording and other filler.

Each passkey item is the eval's prompt (tools/cmd_eval_tasks.c, pk_prompt):
the intro, filler paragraphs in a seeded order until about L tokens (L uniform
in --min-tokens..--max-tokens, counted as the eval counts: 60 for the fixed
text plus each paragraph's tokens + 1, a paragraph's tokens estimated as its
characters / --chars-per-token), the needle at the paragraph boundary nearest
to a uniform depth, then the question. The record's instruction is that prompt
up to "What is the pass key?"; its output is "The pass key is NNNNN." (so the
eval's last words, "The pass key is", are followed by the key in training).
Keys are random 5-digit numbers (10000..99999, as the eval draws them).

The filler is NOT the eval's (LAMBADA passages): TinyStories lines and WikiText
paragraphs (cut at sentence ends into pieces of at most 600 characters), only
from the parts the README's held-out splits do not use (TinyStories lines
1..7050, WikiText before '= Chad at the 2008 Summer Olympics ='). --alpaca
mixes in ordinary Alpaca records (a line range of the Alpaca file) to keep the
model's language modelling. Deterministic: the same arguments write the same
bytes. Standard library only.

  tools/passkey_data.py --out pk.jsonl [--n-passkey 1500] [--n-alpaca 1500] [--seed 0]
"""
import argparse
import json
import os
import random
import sys

# from tools/cmd_eval_tasks.c (pk_intro, the needle, pk_question): keep in step
INTRO = ("There is an important info hidden inside a lot of irrelevant text. "
         "Find it and memorize it. I will quiz you about the important "
         "information there.\n")
NEEDLE = " The pass key is %05d. Remember it. %05d is the pass key."
QUESTION = "\nWhat is the pass key?"          # the eval's question ends " The pass key is"
ANSWER = "The pass key is %05d."
CHAD = "= Chad at the 2008 Summer Olympics ="


def die(msg):
    sys.stderr.write("passkey_data.py: error: %s\n" % msg)
    sys.exit(2 if msg.startswith("--") else 1)


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split("\n")
    except OSError as e:
        die("cannot read %s: %s" % (path, e.strerror))


def cut_paragraph(p, cap=600):
    """pieces of at most cap characters, cut after '. ' where possible"""
    out = []
    while len(p) > cap:
        k = p.rfind(". ", 0, cap)
        k = k + 1 if k > cap // 4 else p.rfind(" ", 0, cap)
        if k <= 0:
            k = cap
        out.append(p[:k].strip())
        p = p[k:].strip()
    if p:
        out.append(p)
    return out


def filler(ts_path, ts_lines, wt_path):
    paras = []
    if ts_path:
        for line in read_lines(ts_path)[:ts_lines]:
            line = line.strip()
            if line:
                paras.extend(cut_paragraph(line))
    if wt_path:
        lines = read_lines(wt_path)
        stop = next((i for i, l in enumerate(lines) if l.strip() == CHAD), None)
        if stop is None:
            die("%s: no line '%s' (the README's held-out split starts there)" % (wt_path, CHAD))
        for line in lines[:stop]:
            line = line.strip()
            if line and not line.startswith("="):   # headings are not prose
                paras.extend(cut_paragraph(line))
    if len(paras) < 10:
        die("fewer than 10 filler paragraphs: give --tinystories and/or --wikitext files with text")
    return paras


def passkey_item(rng, paras, lo, hi, cpt):
    L = rng.randint(lo, hi)
    depth = rng.random()
    key = 10000 + rng.randrange(90000)
    total, pick = 60, []
    while total < L:
        j = rng.randrange(len(paras))
        pick.append(j)
        total += int(len(paras[j]) / cpt + 0.5) + 1
    cut = int(depth * len(pick) + 0.5)
    s = [INTRO]
    for i in range(len(pick) + 1):
        if i == cut:
            s.append(NEEDLE % (key, key))
        if i < len(pick):
            s.append(" " + paras[pick[i]])
    s.append(QUESTION)
    return {"instruction": "".join(s), "input": "", "output": ANSWER % key}


def alpaca_records(path, a, b):
    recs = []
    for n, line in enumerate(read_lines(path)[a - 1:b], start=a):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError as e:
            die("%s line %d: not JSON: %s" % (path, n, e))
        if not isinstance(r, dict) or "instruction" not in r or "output" not in r:
            die("%s line %d: not an Alpaca record (instruction, input, output)" % (path, n))
        recs.append({"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"]})
    return recs


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(here, "..", "..", "shared", "data")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the JSONL to write")
    ap.add_argument("--n-passkey", type=int, default=1500, help="passkey items (1500)")
    ap.add_argument("--n-alpaca", type=int, default=1500, help="ordinary Alpaca records mixed in (1500)")
    ap.add_argument("--min-tokens", type=int, default=64, help="shortest prompt, about (64)")
    ap.add_argument("--max-tokens", type=int, default=320, help="longest prompt, about (320)")
    ap.add_argument("--chars-per-token", type=float, default=4.0, help="filler characters per token (4.0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tinystories", default=os.path.join(shared, "tinystories.valid-head.txt"),
                    help="TinyStories text ('' : none); only its first --tinystories-lines lines are used")
    ap.add_argument("--tinystories-lines", type=int, default=7050)
    ap.add_argument("--wikitext", default=os.path.join(shared, "wikitext-2-raw.test-head.txt"),
                    help="WikiText file ('' : none); used up to the Chad heading")
    ap.add_argument("--alpaca", default=os.path.join(shared, "alpaca-cleaned.train.jsonl"))
    ap.add_argument("--alpaca-lines", default="201:10000",
                    help="A:B, the 1-based line range the ordinary records are drawn from (201:10000: "
                         "not the README's held-out last 200)")
    o = ap.parse_args()
    if o.n_passkey < 0 or o.n_alpaca < 0 or o.n_passkey + o.n_alpaca == 0:
        die("--n-passkey and --n-alpaca: non-negative, not both 0")
    if not (8 <= o.min_tokens <= o.max_tokens):
        die("--min-tokens %d / --max-tokens %d: need 8 <= min <= max" % (o.min_tokens, o.max_tokens))
    if not o.chars_per_token > 0:
        die("--chars-per-token %g: must be positive" % o.chars_per_token)
    try:
        a, b = (int(x) for x in o.alpaca_lines.split(":"))
    except ValueError:
        die("--alpaca-lines %s: A:B, two line numbers" % o.alpaca_lines)
    rng = random.Random(o.seed)
    items = []
    if o.n_passkey:
        paras = filler(o.tinystories, o.tinystories_lines, o.wikitext)
        items += [passkey_item(rng, paras, o.min_tokens, o.max_tokens, o.chars_per_token)
                  for _ in range(o.n_passkey)]
    if o.n_alpaca:
        recs = alpaca_records(o.alpaca, a, b)
        if len(recs) < o.n_alpaca:
            die("--n-alpaca %d: only %d records in lines %s of %s" % (o.n_alpaca, len(recs), o.alpaca_lines,
                                                                     o.alpaca))
        items += rng.sample(recs, o.n_alpaca)
    rng.shuffle(items)
    tmp = o.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in items:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, o.out)
    sys.stderr.write("wrote %s: %d passkey items, %d Alpaca records (seed %d)\n" %
                     (o.out, o.n_passkey, o.n_alpaca, o.seed))


if __name__ == "__main__":
    main()
