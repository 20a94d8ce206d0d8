#!/bin/sh
# passkey_study.sh - passkey retrieval of each linearization option (issue 19), on the
# passkey-capable teacher that tools/make_passkey_teacher.sh builds:
#   for each configuration and seed, `lolcats linearize` on that teacher's training mix (pk.jsonl:
#   passkey items in the eval's wording + Alpaca records, 512-token sequences, 122,880 + 81,920
#   tokens), then `eval --task passkey` at 128 and 256 tokens (2x and 4x the window of 64; depths
#   0, 0.5, 1; 5 trials per cell); OUT/passkey_study.md gets one row per configuration (found / tried,
#   summed over the seeds).
#   tools/passkey_study.sh [OUT]     (OUT: make_passkey_teacher.sh's folder, default build/passkey-teacher)
# Environment: CONFIGS ("original sinks gate"), SEEDS ("0 1"), LOLCATS_BIN (build/lolcats),
#   SHARED (../shared), OMP_NUM_THREADS (1). Resumable: a finished cell is kept, a training resumes.
set -eu
OUT=${1:-build/passkey-teacher}
BIN=${LOLCATS_BIN:-build/lolcats}
SHARED=${SHARED:-../shared}
CONFIGS=${CONFIGS:-original sinks gate}
SEEDS=${SEEDS:-0 1}
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMP_NUM_THREADS
die() { echo "passkey_study.sh: error: $*" >&2; exit 1; }
[ -f "$OUT/teacher/config.json" ] || die "$OUT/teacher: no teacher (run tools/make_passkey_teacher.sh $OUT first)"
[ -f "$OUT/pk.jsonl" ] || die "$OUT/pk.jsonl: missing (run tools/make_passkey_teacher.sh $OUT first)"
flags_of() {
    case $1 in
        original) echo "" ;;
        sinks) echo "--sinks 4" ;;
        gate) echo "--gate" ;;
        kl) echo "--kl-factor 1" ;;
        gate-kl) echo "--gate --kl-factor 1" ;;
        *) die "unknown configuration '$1' (original, sinks, gate, kl, gate-kl)" ;;
    esac
}
mkdir -p "$OUT/study"
for c in $CONFIGS; do
    fl=$(flags_of "$c")
    for s in $SEEDS; do
        n=$OUT/study/$c-s$s
        [ -s "$n.passkey.json" ] && continue
        if [ ! -f "$n.safetensors" ]; then
            # shellcheck disable=SC2086
            "$BIN" linearize --model "$OUT/teacher" --data "$OUT/pk.jsonl" --seq-len 512 --grad-accum 8 \
                --distill-tokens 122880 --finetune-tokens 81920 --val-seqs 4 --val-every 10 --seed "$s" \
                --resume --out "$n.safetensors" $fl 2> "$n.log"
        fi
        "$BIN" eval --model "$OUT/teacher" --lolcats "$n.safetensors" --task passkey --lengths 128,256 \
            --depths 0,0.5,1 --limit 5 --data-dir "$SHARED/data/eval" --json "$n.passkey.json.tmp" > /dev/null
        mv "$n.passkey.json.tmp" "$n.passkey.json"
    done
done
python3 - "$OUT" "$CONFIGS" "$SEEDS" <<'PY'
import json, os, sys
out, configs, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def found(path):
    j = json.load(open(path))
    j = j.get("passkey", j.get("tasks", {}).get("passkey", j))
    r = {}
    for c in j["cells"]:
        f, n = r.get(c["length"], (0, 0))
        r[c["length"]] = (f + round(c["acc"] * c["trials"]), n + c["trials"])
    return r
rows = ["| option | passkey @128 (2x window) | passkey @256 (4x window) | seeds |", "|---|---|---|---|"]
t = found(os.path.join(out, "passkey_teacher.json")) if os.path.exists(os.path.join(out, "passkey_teacher.json")) else {}
if t:
    rows.append("| teacher (softmax) | %d/%d | %d/%d | - |" % (t[128] + t[256]))
for c in configs:
    tot = {}
    done = [s for s in seeds if os.path.exists("%s/study/%s-s%s.passkey.json" % (out, c, s))]
    for s in done:
        for L, (f, n) in found("%s/study/%s-s%s.passkey.json" % (out, c, s)).items():
            a, b = tot.get(L, (0, 0))
            tot[L] = (a + f, b + n)
    if tot:
        rows.append("| %s | %d/%d | %d/%d | %s |" % ((c,) + tot.get(128, (0, 0)) + tot.get(256, (0, 0)) + (",".join(done),)))
open(os.path.join(out, "passkey_study.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
