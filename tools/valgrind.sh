#!/bin/sh
# valgrind.sh BIN - the command-line tool under valgrind memcheck: every run
# must exit as it does natively, with no memory error and no definite leak.
# Uses tests/data (always there) and stories260K from ../shared (skipped with
# a SKIPPED line when absent). Build BIN without OpenMP (make valgrind does).
B=${1:-build/valgrind/lolcats}
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
T=$(mktemp -d "${TMPDIR:-/tmp}/lolcats_vg_XXXXXX") || exit 1
pass=0; fail=0
run() {  # run EXPECTED_EXIT ARGS...
    want=$1; shift
    $VG "$B" "$@" >"$T/out.txt" 2>"$T/err.txt"; rc=$?
    if [ "$rc" -eq "$want" ]; then pass=$((pass + 1)); echo "  ok      lolcats $*"
    else fail=$((fail + 1)); echo "  FAIL    lolcats $* (exit $rc, expected $want)"; tail -n 30 "$T/err.txt"; fi
}
echo "valgrind memcheck of $B"
run 0 ref tests/data/hybrid_tk_n13_w4_gqa_relu_bias.safetensors "$T/y.safetensors"
run 0 ref --scalar tests/data/hybrid_tk_n13_w4_gqa_relu_bias.safetensors "$T/ys.safetensors"
run 0 compare "$T/y.safetensors" "$T/ys.safetensors" --rtol 1e-4 --atol 1e-5
run 0 inspect tests/data/hybrid_sw_n10_w16.safetensors
printf '\005\0\0' > "$T/bad.safetensors"
run 1 inspect "$T/bad.safetensors"
run 1 ref "$T/bad.safetensors" "$T/never.safetensors"
S=../shared/models/stories260K
if [ -f "$S/stories260K.bin" ] && [ -f ../shared/data/tinystories.valid-head.txt ]; then
    M="--model $S/stories260K.bin --tokenizer $S/tok512.bin"
    head -c 6000 ../shared/data/tinystories.valid-head.txt > "$T/d.txt"
    run 0 inspect "$S/stories260K.bin"
    run 0 generate $M --prompt "Once upon a time" --steps 24 --temperature 0
    run 0 eval $M --data "$T/d.txt" --ctx 128
    run 0 distill $M --data "$T/d.txt" --out "$T/s1.safetensors" --seq-len 64 --tokens 256 --grad-accum 2 \
        --feature-dim 8 --window 16 --val-every 1 --val-seqs 1
    run 0 finetune $M --data "$T/d.txt" --lolcats "$T/s1.safetensors" --out "$T/s2.safetensors" --seq-len 64 \
        --tokens 128 --grad-accum 2 --val-every 1 --val-seqs 1 --merge "$T/merged"
    run 0 eval $M --data "$T/d.txt" --ctx 128 --lolcats "$T/s2.safetensors"
    run 0 generate $M --lolcats "$T/s2.safetensors" --prompt "Once" --steps 24 --temperature 0.8 --seed 3
else
    echo "SKIPPED: valgrind of the model commands (../shared/models/stories260K absent)"
fi
rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
