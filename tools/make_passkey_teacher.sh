#!/bin/sh
# make_passkey_teacher.sh - a passkey-capable teacher from alpaca-llama-25m, end to end:
#   1. tools/passkey_data.py: passkey items (the eval's wording, TinyStories / WikiText filler from
#      the training parts of the README's splits) mixed with ordinary Alpaca records;
#   2. lolcats finetune --softmax: LoRA on q/k/v/o through the teacher (softmax attention),
#      --merge: the teacher with LoRA merged, a plain Hugging Face directory;
#   3. measurements of the new and the original teacher: eval --task passkey at 128 and 256
#      tokens (depths 0, 0.5, 1; 5 trials per cell) and held-out NLL on the README's splits
#      (TinyStories lines 7051.., WikiText from the Chad heading, the last 200 Alpaca records,
#      1024-token windows), collected into OUT/results.md.
# Deterministic (seeded data, seeded training) and resumable: rerun after an interruption and
# every finished step is kept (training continues from its state with --resume).
#   tools/make_passkey_teacher.sh [OUT]        (default build/passkey-teacher; never committed)
# Environment: TOKENS (300000), SEQ (512), LR (1e-3), N_PASSKEY (1500), N_ALPACA (1500), SEED (0),
#   OMP_NUM_THREADS (1), LOLCATS_BIN (build/lolcats), SHARED (../shared).
set -eu
OUT=${1:-build/passkey-teacher}
BIN=${LOLCATS_BIN:-build/lolcats}
SHARED=${SHARED:-../shared}
M=$SHARED/models/alpaca-llama-25m
D=$SHARED/data
TOKENS=${TOKENS:-300000}
SEQ=${SEQ:-512}
LR=${LR:-1e-3}
N_PASSKEY=${N_PASSKEY:-1500}
N_ALPACA=${N_ALPACA:-1500}
SEED=${SEED:-0}
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMP_NUM_THREADS
die() { echo "make_passkey_teacher.sh: error: $*" >&2; exit 1; }
[ -d "$M" ] || die "$M: no such model (run from the repository root, or set SHARED)"
[ -x "$BIN" ] || make -j1 "$BIN" >/dev/null || die "cannot build $BIN"
mkdir -p "$OUT"

# 1. data (deterministic: rewritten each time, same bytes)
tools/passkey_data.py --out "$OUT/pk.jsonl" --n-passkey "$N_PASSKEY" --n-alpaca "$N_ALPACA" --seed "$SEED"

# held-out splits (README, "Measured: alpaca-llama-25m")
sed -n '7051,$p' "$D/tinystories.valid-head.txt" > "$OUT/ts_held.txt"
n=$(grep -n '^ = Chad at the 2008 Summer Olympics = $' "$D/wikitext-2-raw.test-head.txt" | cut -d: -f1)
tail -n +"$n" "$D/wikitext-2-raw.test-head.txt" > "$OUT/wt_held.txt"
tail -n 200 "$D/alpaca-cleaned.train.jsonl" > "$OUT/al_held.jsonl"

# 2. the teacher's LoRA, merged
if [ ! -f "$OUT/teacher/config.json" ]; then
    "$BIN" finetune --softmax --model "$M" --data "$OUT/pk.jsonl" --seq-len "$SEQ" --grad-accum 8 \
        --tokens "$TOKENS" --lr "$LR" --val-seqs 8 --val-every 10 --seed "$SEED" \
        --json-log "$OUT/train.jsonl" --out "$OUT/lora.safetensors" --merge "$OUT/teacher" --resume
fi

# 3. measurements (each kept once written)
for t in orig teacher; do
    [ $t = orig ] && MM=$M || MM=$OUT/teacher
    [ -s "$OUT/passkey_$t.json" ] ||
        "$BIN" eval --model "$MM" --task passkey --lengths 128,256 --depths 0,0.5,1 --limit 5 --data-dir "$D/eval" \
            --json "$OUT/passkey_$t.json" > "$OUT/passkey_$t.txt"
    for s in ts_held.txt wt_held.txt al_held.jsonl; do
        f=$OUT/nll_${t}_${s%%.*}.json
        [ -s "$f" ] || { "$BIN" eval --model "$MM" --data "$OUT/$s" --ctx 1024 --json > "$f.tmp" && mv "$f.tmp" "$f"; }
    done
done

# the table
python3 - "$OUT" <<'EOF'
import json, math, sys
out = sys.argv[1]
def nll(t, s):
    return json.load(open("%s/nll_%s_%s.json" % (out, t, s)))["nll"]
def pk(t):
    j = json.load(open("%s/passkey_%s.json" % (out, t)))
    j = j.get("passkey", j.get("tasks", {}).get("passkey", j))
    cells = {}
    for c in j["cells"]:
        cells.setdefault(c["length"], []).append(c["acc"] * c["trials"])
        cells.setdefault(("n", c["length"]), []).append(c["trials"])
    return {L: (sum(cells[L]), sum(cells[("n", L)])) for L in (128, 256) if L in cells}
rows = ["| teacher | passkey @128 | passkey @256 | NLL TinyStories | NLL WikiText | NLL Alpaca |",
        "|---|---|---|---|---|---|"]
base = {s: nll("orig", s) for s in ("ts_held", "wt_held", "al_held")}
for t, name in (("orig", "alpaca-llama-25m"), ("teacher", "+ passkey LoRA, merged")):
    p = pk(t)
    cols = ["%d/%d" % (round(p[L][0]), p[L][1]) if L in p else "-" for L in (128, 256)]
    for s in ("ts_held", "wt_held", "al_held"):
        v = nll(t, s)
        cols.append("%.4f" % v + ("" if t == "orig" else " (×%.3f)" % math.exp(v - base[s])))
    rows.append("| %s | %s |" % (name, " | ".join(cols)))
open("%s/results.md" % out, "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
