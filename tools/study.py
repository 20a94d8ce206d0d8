#!/usr/bin/python3
"""Which linearization options beat the original recipe at its budget (issue 19's study).

    /usr/bin/python3 tools/study.py --out DIR [--jobs N] [--threads T] [--seeds 0,1]
        [--sets ts,wt,al] [--configs original,sinks,kl,gate,auto2,best] [--best FLAGS]
        [--config NAME=FLAGS ...]
        [--tokens 1000000] [--bin build/lolcats] [--model DIR] [--archive DIR]
        [--dry-run] [--table-only]
        [--passkey-teacher DIR [--pk-limit 10]]

Every (configuration, split, seed) cell runs `lolcats linearize` with the README's recipe on
alpaca-llama-25m (tk, window 64, feature dim 64, 1024-token sequences, --tokens for each stage)
on the split's training part, then scores the held-out part (`eval`, held-out NLL) and passkey
retrieval at 2x and 4x the window (`eval --task passkey`). Each cell's files live under
DIR/runs/; a cell whose result file exists is not run again, and a training without its
NAME.done marker resumes from its state file (`--resume`), so the script can be stopped and started again
(for instance under `timeout -s INT`). A finished cell's result (a small JSON file: NLL,
passkey, training seconds, the binary that made it) is also copied to the archive
(--archive, default study/cells in the repository), and a cell found there is not run again:
the cells of a grid this size (about half an hour of one core each) are done over several
sessions and machines, and the archive is what they share. At the end (and with --table-only) it writes
DIR/study.md (a Markdown table: each figure the mean of the seeds) and DIR/study.json.

With --passkey-teacher DIR (the output of tools/make_passkey_teacher.sh: DIR/teacher, a
passkey-capable alpaca-llama-25m, and its training mix DIR/pk.jsonl) the study is the passkey
comparison instead: each configuration and seed linearizes DIR/teacher with the README's passkey
recipe (512-token sequences, 122,880 + 81,920 tokens of DIR/pk.jsonl) and scores passkey
retrieval at 2x and 4x the window (depths 0, 0.5, 1; --pk-limit trials each); cells
pk-CONFIG-sSEED, the table OUT/passkey.md and OUT/passkey.json (OUT: --out).

Decode state per sequence is computed from the model's config and the options: the window
ring (keys, values, key features), the linear state (S, z) per hybrid layer, the sink keys,
and, per token, the KV cache of every softmax layer.
"""
import argparse
import concurrent.futures as cf
import json
import math
import os
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> extra flags of `linearize` (the original recipe is the default of every flag)
CONFIGS = {
    "original": [],
    "sinks": ["--sinks", "4"],
    "kl": ["--kl-factor", "1"],
    "gate": ["--gate"],
    "auto2": ["--softmax-layers", "auto:2"],
    # not in the default grid: combinations, and the bf16 compute mode (issue 23's quality check)
    "gatekl": ["--gate", "--kl-factor", "1"],
    "sinkskl": ["--sinks", "4", "--kl-factor", "1"],
    "gatekl2": ["--gate", "--gate-stage2", "--kl-factor", "1"],
    "gatesinks": ["--gate", "--sinks", "4"],
    "gatesinkskl": ["--gate", "--sinks", "4", "--kl-factor", "1"],
    "bf16": ["--compute", "bf16"],
}
DEFAULT_CONFIGS = "original,sinks,kl,gate,auto2"
SETS = {  # name -> (training file, held-out file)
    "ts": ("ts_train.txt", "ts_held.txt"),
    "wt": ("wt_train.txt", "wt_held.txt"),
    "al": ("al_train.jsonl", "al_held.jsonl"),
}
WINDOW = 64


def log(msg):
    sys.stderr.write("study: %s\n" % msg)
    sys.stderr.flush()


def write_atomic(path, text):
    """Writes text to path through path.tmp and a rename: never a half-written file."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def prepare(data_dir, shared):
    """The README's splits ("Measured: alpaca-llama-25m ..."), written once."""
    os.makedirs(data_dir, exist_ok=True)
    ts = open(os.path.join(shared, "data/tinystories.valid-head.txt"), encoding="utf-8").read()
    ts_lines = ts.splitlines(True)
    wt_lines = open(os.path.join(shared, "data/wikitext-2-raw.test-head.txt"),
                    encoding="utf-8").read().splitlines(True)
    al_lines = open(os.path.join(shared, "data/alpaca-cleaned.train.jsonl"),
                    encoding="utf-8").read().splitlines(True)
    cut = next(i for i, s in enumerate(wt_lines)
               if s.rstrip("\n") == " = Chad at the 2008 Summer Olympics = ")
    parts = {
        "ts_train.txt": ts_lines[:7050], "ts_held.txt": ts_lines[7050:],
        "wt_train.txt": wt_lines[:cut], "wt_held.txt": wt_lines[cut:],
        "al_train.jsonl": al_lines[:10000], "al_held.jsonl": al_lines[-200:],
    }
    for name, lines in parts.items():
        path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            write_atomic(path, "".join(lines))


def run(cmd, log_path, tick=None):
    """Runs cmd, stdout returned, stderr appended to log_path; raises on failure. tick(elapsed)
    is called about every 30 s while it runs (and once at the end)."""
    t0 = time.time()
    with open(log_path, "a", encoding="utf-8") as lf:
        lf.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
        lf.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=lf, text=True)
        out = []
        reader = threading.Thread(target=lambda: out.append(p.stdout.read()))
        reader.start()
        while True:
            try:
                p.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                if tick:
                    tick(time.time() - t0)
        reader.join()
    if tick:
        tick(time.time() - t0)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d (see %s)" % (cmd[1], p.returncode, log_path))
    return "".join(out)


def archived(a, name):
    """The archive's copy of NAME.json, or None."""
    p = os.path.join(a.archive, name + ".json") if a.archive else ""
    return json.load(open(p)) if p and os.path.exists(p) else None


def archive(a, name, r):
    """Writes r as the archive's NAME.json (temporary file, then rename)."""
    if not a.archive:
        return
    os.makedirs(a.archive, exist_ok=True)
    write_atomic(os.path.join(a.archive, name + ".json"), json.dumps(r, indent=1, sort_keys=True) + "\n")


def finished(a, name):
    """A finished cell's result: the archive's, else DIR/runs/NAME.json (then archived), else None."""
    r = archived(a, name)
    path = os.path.join(a.out, "runs", name + ".json")
    if r is None and os.path.exists(path):
        r = json.load(open(path))
        archive(a, name, r)
    return r


def save(a, name, r):
    """A finished cell's result: DIR/runs/NAME.json and the archive's copy."""
    write_atomic(os.path.join(a.out, "runs", name + ".json"), json.dumps(r, indent=1))
    archive(a, name, r)


def bin_id(a):
    """What made a result: the binary's file name and version line, and the repository's HEAD."""
    try:
        ver = subprocess.run([a.bin, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        ver, head = "", ""
    return {"bin": os.path.basename(a.bin), "version": ver, "head": head}


def cell(a, cfg, flags, set_name, seed):
    """Trains and scores one cell; returns its result dict (cached in DIR/runs/NAME.json and in
    the archive)."""
    name = "%s-%s-s%d" % (cfg, set_name, seed)
    r = finished(a, name)
    if r is not None:
        return r
    runs = os.path.join(a.out, "runs")
    data = os.path.join(a.out, "data")
    train, held = (os.path.join(data, f) for f in SETS[set_name])
    ckpt = os.path.join(runs, name + ".safetensors")
    lg = os.path.join(runs, name + ".log")
    env_t = ["-t", str(a.threads)]
    train_s = linearize(a, name, a.model, ["--data", train, "--seq-len", "1024", "--distill-tokens",
                                           str(a.tokens), "--finetune-tokens", str(a.tokens),
                                           "--seed", str(seed)] + flags)
    out = run([a.bin, "eval", "--model", a.model, "--data", held, "--ctx", "1024",
               "--lolcats", ckpt, "--json"] + env_t, lg)
    nll = json.loads(out)["nll"]
    pk_json = os.path.join(runs, name + ".passkey.json")
    passkey_run(a, a.model, ["--lolcats", ckpt], pk_json, lg)
    pk = passkey_by_length(json.load(open(pk_json)))
    r = {"config": cfg, "flags": flags, "set": set_name, "seed": seed, "nll": nll,
         "passkey": pk, "train_seconds": train_s, "tokens": a.tokens, "made_by": bin_id(a)}
    save(a, name, r)
    log("%s: held-out NLL %.4f, passkey %s, %s s" % (name, nll, pk,
                                                    "%.0f" % train_s if train_s else "?"))
    return r


def linearize(a, name, model, args):
    """Runs (or resumes) `linearize --model MODEL ARGS` into DIR/runs/NAME.safetensors unless its
    NAME.done marker exists; returns the training seconds summed over resumed runs."""
    runs = os.path.join(a.out, "runs")
    secs_path = os.path.join(runs, name + ".train_seconds")
    done_path = os.path.join(runs, name + ".done")  # training finished (the checkpoint alone
    if not os.path.exists(done_path):               # may be a mid-run save of --resume's)
        cmd = [a.bin, "linearize", "--model", model, "--out", os.path.join(runs, name + ".safetensors"),
               "--resume", "--json-log", os.path.join(runs, name + ".jsonl"),
               "-t", str(a.threads)] + args
        prev = float(open(secs_path).read()) if os.path.exists(secs_path) else 0.0
        # the seconds are rewritten every ~30 s, so a killed run loses at most that much of them
        run(cmd, os.path.join(runs, name + ".log"),
            tick=lambda t: write_atomic(secs_path, "%.1f\n" % (prev + t)))
        write_atomic(done_path, "")
    return float(open(secs_path).read()) if os.path.exists(secs_path) else None


# The passkey recipe of the README ("A teacher that can do passkey retrieval")
PK_RECIPE = ["--seq-len", "512", "--grad-accum", "8", "--distill-tokens", "122880",
             "--finetune-tokens", "81920", "--val-seqs", "4", "--val-every", "10"]


def pk_cell(a, cfg, flags, seed):
    """One configuration linearized on the passkey teacher and scored on passkey retrieval
    (DIR/runs/pk-CFG-sSEED.*, archived like the held-out cells)."""
    name = "pk-%s-s%d" % (cfg, seed)
    r = finished(a, name)
    if r is not None:
        return r
    runs = os.path.join(a.out, "runs")
    teacher = os.path.join(a.passkey_teacher, "teacher")
    train_s = linearize(a, name, teacher, ["--data", os.path.join(a.passkey_teacher, "pk.jsonl"),
                                           "--seed", str(seed)] + PK_RECIPE + flags)
    pk_json = os.path.join(runs, name + ".passkey.json")
    passkey_run(a, teacher, ["--lolcats", os.path.join(runs, name + ".safetensors"),
                             "--limit", str(a.pk_limit)], pk_json, os.path.join(runs, name + ".log"))
    j = json.load(open(pk_json))
    r = {"config": cfg, "flags": flags, "seed": seed, "passkey": passkey_by_length(j),
         "by_depth": passkey_by_depth(j), "limit": a.pk_limit, "train_seconds": train_s,
         "made_by": bin_id(a)}
    save(a, name, r)
    log("%s: passkey %s, %s s" % (name, r["passkey"], "%.0f" % train_s if train_s else "?"))
    return r


def pk_teacher(a):
    """The passkey teacher's own accuracy with the same trials (archived as pk-teacher.json)."""
    r = archived(a, "pk-teacher")
    if r is not None:
        return r
    pk_json = os.path.join(a.out, "runs", "pk-teacher.passkey.json")
    if not os.path.exists(pk_json):
        passkey_run(a, os.path.join(a.passkey_teacher, "teacher"), ["--limit", str(a.pk_limit)],
                    pk_json, os.path.join(a.out, "runs", "pk-teacher.log"))
    j = json.load(open(pk_json))
    r = {"passkey": passkey_by_length(j), "by_depth": passkey_by_depth(j), "limit": a.pk_limit,
         "made_by": bin_id(a)}
    archive(a, "pk-teacher", r)
    return r


def pk_table(a, results):
    """OUT/passkey.md and OUT/passkey.json: passkey accuracy per configuration (mean of the
    seeds), per length and, in brackets, per needle depth 0 / 0.5 / 1."""
    lens = [str(2 * WINDOW), str(4 * WINDOW)]

    def fmt(pk, dep):
        return "%.2f (%s)" % (pk, " / ".join("%.2f" % d for d in dep))

    def mean(v):
        return sum(v) / len(v)
    t = pk_teacher(a)
    lines = ["| option (flags) | passkey @%s (depth 0 / 0.5 / 1) | passkey @%s | seeds | train s |" %
             tuple(lens), "|---|---|---|---|---|",
             "| passkey teacher | %s | %s | | |" % tuple(
                 fmt(t["passkey"].get(L, float("nan")), t["by_depth"].get(L, [])) for L in lens)]
    rows = []
    for cfg in a.configs:
        rs = [r for r in results if r["config"] == cfg]
        if not rs:
            continue
        row = {"config": cfg, "flags": " ".join(a.flag_of[cfg]), "seeds": len(rs)}
        cells = []
        for L in lens:
            pk = mean([r["passkey"].get(L, 0.0) for r in rs])
            dep = [mean(x) for x in zip(*[r["by_depth"].get(L, []) for r in rs])]
            row[L], row[L + "_by_depth"] = pk, dep
            cells.append(fmt(pk, dep))
        ts = [r["train_seconds"] for r in rs if r["train_seconds"]]
        row["train_seconds"] = mean(ts) if ts else None
        rows.append(row)
        lines.append("| %s (`%s`) | %s | %s | %d | %s |" % (
            cfg, row["flags"] or "defaults", cells[0], cells[1], len(rs),
            "%.0f" % row["train_seconds"] if row["train_seconds"] else ""))
    md = "\n".join(lines) + "\n"
    write_atomic(os.path.join(a.out, "passkey.md"), md)
    write_atomic(os.path.join(a.out, "passkey.json"),
                 json.dumps({"teacher": t, "rows": rows, "cells": results}, indent=1))
    sys.stdout.write(md)


def passkey_by_depth(j):
    """{length: [accuracy at each depth, in the eval's order]} from `eval --task passkey --json`."""
    out = {}
    for c in passkey_cells(j):
        out.setdefault(str(c["length"]), []).append(c["acc"])
    return out


def passkey_cells(j):
    """The cells list of `eval --task passkey --json`."""
    for key in ("passkey", "tasks"):
        if isinstance(j, dict) and key in j:
            j = j[key]
    if isinstance(j, dict) and "passkey" in j:
        j = j["passkey"]
    return (j.get("cells") if isinstance(j, dict) else None) or []


def passkey_by_length(j):
    """Accuracy per length from `eval --task passkey --json` (cells averaged over depths)."""
    return {k: sum(v) / len(v) for k, v in passkey_by_depth(j).items()}


def teacher_nll(a, set_name):
    r = archived(a, "teacher-%s" % set_name)
    if r is not None:
        return r["nll"]
    path = os.path.join(a.out, "runs", "teacher-%s.json" % set_name)
    if os.path.exists(path):
        r = json.load(open(path))
        archive(a, "teacher-%s" % set_name, r)
        return r["nll"]
    held = os.path.join(a.out, "data", SETS[set_name][1])
    out = run([a.bin, "eval", "--model", a.model, "--data", held, "--ctx", "1024", "--json",
               "-t", str(a.threads)], os.path.join(a.out, "runs", "teacher.log"))
    nll = json.loads(out)["nll"]
    pk_json = os.path.join(a.out, "runs", "teacher.passkey.json")
    if not os.path.exists(pk_json):
        passkey_run(a, a.model, [], pk_json, os.path.join(a.out, "runs", "teacher.log"))
    json.dump({"nll": nll}, open(path, "w"))
    archive(a, "teacher-%s" % set_name, {"nll": nll, "made_by": bin_id(a)})
    return nll


def teacher_passkey(a):
    """The teacher's passkey accuracy per length (archived as teacher-passkey.json)."""
    r = archived(a, "teacher-passkey")
    if r is not None:
        return r["passkey"]
    pk = passkey_by_length(json.load(open(os.path.join(a.out, "runs", "teacher.passkey.json"))))
    archive(a, "teacher-passkey", {"passkey": pk, "made_by": bin_id(a)})
    return pk


def passkey_run(a, model, extra, pk_json, lg):
    run([a.bin, "eval", "--task", "passkey", "--model", model] + extra +
        ["--lengths", "%d,%d" % (2 * WINDOW, 4 * WINDOW), "--depths", "0,0.5,1",
         "--data-dir", os.path.join(a.shared, "data/eval"), "--json", pk_json,
         "-t", str(a.threads)], lg)


def state_bytes(model_dir, flags):
    """(fixed bytes per sequence, bytes per token) of the linearized decode state."""
    c = json.load(open(os.path.join(model_dir, "config.json")))
    L, H = c["num_hidden_layers"], c["num_attention_heads"]
    Hk = c.get("num_key_value_heads", H)
    D = c["hidden_size"] // H
    F = 2 * 64  # softmax_dim feature map: 2 x feature dim
    w = WINDOW
    sinks = int(flags[flags.index("--sinks") + 1]) if "--sinks" in flags else 0
    soft = 0
    if "--softmax-layers" in flags:
        v = flags[flags.index("--softmax-layers") + 1]
        soft = int(v[5:]) if v.startswith("auto:") else len(v.split(","))
    hyb = L - soft
    # lc_decode_state_floats_sinks: the ring (keys, values, key features), S, z, and the sink
    # keys and values (sinks are never linear keys: no features kept for them)
    per_layer = 4 * (2 * Hk * w * D + H * w * F + H * F * D + H * F + 2 * Hk * sinks * D)
    if "--gate" in flags:   # the window's log g (H x w floats per layer)
        per_layer += 4 * H * w
    return hyb * per_layer, soft * 4 * 2 * Hk * D


def table(a, results):
    """DIR/study.md and DIR/study.json: each cell the mean over seeds."""
    sets = a.sets
    teach = {s: teacher_nll(a, s) for s in sets}
    rows = []
    for cfg in a.configs:
        flags = a.flag_of[cfg]
        row = {"config": cfg, "flags": " ".join(flags)}
        for s in sets:
            v = [r["nll"] for r in results if r["config"] == cfg and r["set"] == s]
            row[s] = sum(v) / len(v) if v else None
            row[s + "_seeds"] = len(v)
        pks = {}
        for r in results:
            if r["config"] == cfg:
                for k, x in r["passkey"].items():
                    pks.setdefault(k, []).append(x)
        row["passkey"] = {k: sum(v) / len(v) for k, v in pks.items()}
        ts = [r["train_seconds"] for r in results if r["config"] == cfg]
        row["train_seconds"] = sum(ts) / len(ts) if ts else None
        row["state_bytes"], row["bytes_per_token"] = state_bytes(a.model, flags)
        rows.append(row)
    head = "| option (flags) | " + " | ".join("%s NLL (x teacher ppl; gap closed; seeds)" % s for s in sets) + \
        " | passkey %d / %d | decode state | train s |" % (2 * WINDOW, 4 * WINDOW)
    lines = [head, "|" + "---|" * (len(sets) + 4)]
    orig = next((r for r in rows if r["config"] == "original"), None)
    tpk = teacher_passkey(a)
    lines.append("| teacher | " + " | ".join("%.4f" % teach[s] for s in sets) + " | " +
                 " / ".join("%.2f" % tpk.get(str(k), float("nan")) for k in (2 * WINDOW, 4 * WINDOW)) +
                 " | KV cache | |")
    for r in rows:
        cells = []
        for s in sets:
            if r[s] is None:
                cells.append("")
                continue
            gap = ""   # the share of the original recipe's gap to the teacher that this closes
            if orig is not None and r is not orig and orig[s] is not None and orig[s] > teach[s]:
                gap = "; %+.0f%%" % (100 * (orig[s] - r[s]) / (orig[s] - teach[s]))
            cells.append("%.4f (x%.3f%s; %d)" % (r[s], math.exp(r[s] - teach[s]), gap, r[s + "_seeds"]))
        pk = r["passkey"]
        pkc = " / ".join("%.2f" % pk[k] if k in pk else "-" for k in
                         (str(2 * WINDOW), str(4 * WINDOW)))
        st = "%.0f KiB" % (r["state_bytes"] / 1024)
        if r["bytes_per_token"]:
            st += " + %d B/token" % r["bytes_per_token"]
        lines.append("| %s (`%s`) | %s | %s | %s | %s |" % (
            r["config"], r["flags"] or "defaults", " | ".join(cells), pkc, st,
            "%.0f" % r["train_seconds"] if r["train_seconds"] else ""))
    md = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "study.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "study.json"), "w") as f:
        json.dump({"teacher": teach, "rows": rows, "cells": results}, f, indent=1)
    sys.stdout.write(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/lolcats"))
    ap.add_argument("--model", default=os.path.join(ROOT, "../shared/models/alpaca-llama-25m"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "../shared"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--sets", default="ts,wt,al")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS)
    ap.add_argument("--best", default="", help="flags of the 'best' configuration")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=FLAGS",
                    help="defines one more configuration (repeatable)")
    ap.add_argument("--tokens", type=int, default=1000000)
    ap.add_argument("--archive", default=os.path.join(ROOT, "study", "cells"),
                    help="finished cells shared between runs and machines ('' for none)")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--passkey-teacher", default="", metavar="DIR",
                    help="the passkey comparison on tools/make_passkey_teacher.sh's DIR instead")
    ap.add_argument("--pk-limit", type=int, default=10, help="passkey trials per length and depth")
    a = ap.parse_args()
    a.sets = [s for s in a.sets.split(",") if s]
    a.configs = [c for c in a.configs.split(",") if c]
    a.flag_of = dict(CONFIGS)
    for d in a.config:
        name, eq, flags = d.partition("=")
        if not eq or not name.isalnum():
            ap.error("--config %r: want NAME=FLAGS with a letters-and-digits NAME" % d)
        a.flag_of[name] = flags.split()
    if a.best:
        a.flag_of["best"] = a.best.split()
        if "best" not in a.configs:
            a.configs.append("best")
    for s in a.sets:
        if s not in SETS:
            ap.error("--sets: unknown split %r (ts, wt, al)" % s)
    for c in a.configs:
        if c not in a.flag_of:
            ap.error("--configs: unknown configuration %r (%s; best with --best; others with "
                     "--config NAME=FLAGS)" % (c, ", ".join(CONFIGS)))
    seeds = [int(x) for x in a.seeds.split(",") if x]
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)
    if a.passkey_teacher:
        return passkey_main(a, seeds)
    prepare(os.path.join(a.out, "data"), a.shared)
    todo = [(c, a.flag_of[c], s, seed) for c in a.configs for s in a.sets for seed in seeds]
    if a.dry_run:
        for c, f, s, seed in todo:
            print("%s %s seed %d: linearize %s" % (c, s, seed, " ".join(f)))
        return 0
    results, failed = [], 0
    if not a.table_only:
        with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            futs = {ex.submit(cell, a, *t): t for t in todo}
            for i, fu in enumerate(cf.as_completed(futs), 1):
                try:
                    results.append(fu.result())
                except Exception as e:  # one cell's failure does not stop the others
                    failed += 1
                    log("%s: %s" % ("-".join(map(str, futs[fu][::2])), e))
                log("%d/%d cells done" % (i, len(todo)))
    else:
        for c, f, s, seed in todo:
            r = finished(a, "%s-%s-s%d" % (c, s, seed))
            if r is not None:
                results.append(r)
    table(a, results)
    return 1 if failed else 0


def passkey_main(a, seeds):
    """The passkey comparison (--passkey-teacher): every configuration x seed, then the table."""
    for f in ("teacher/config.json", "pk.jsonl"):
        if not os.path.exists(os.path.join(a.passkey_teacher, f)):
            log("--passkey-teacher %s: no %s (make it with tools/make_passkey_teacher.sh %s)" %
                (a.passkey_teacher, f, a.passkey_teacher))
            return 2
    if a.pk_limit < 1:
        log("--pk-limit %d: want at least 1 trial" % a.pk_limit)
        return 2
    todo = [(c, a.flag_of[c], seed) for c in a.configs for seed in seeds]
    if a.dry_run:
        for c, f, seed in todo:
            print("%s passkey seed %d: linearize %s" % (c, seed, " ".join(PK_RECIPE + f)))
        return 0
    results, failed = [], 0
    for i, (c, f, seed) in enumerate(todo, 1):
        name = "pk-%s-s%d" % (c, seed)
        if a.table_only:
            r = finished(a, name)
            if r is not None:
                results.append(r)
            continue
        try:
            results.append(pk_cell(a, c, f, seed))
        except Exception as e:  # one cell's failure does not stop the others
            failed += 1
            log("%s: %s" % (name, e))
        log("%d/%d passkey cells done" % (i, len(todo)))
    pk_table(a, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
