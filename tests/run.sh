#!/bin/sh
# Runs every test program under $1 (default build), prints each one's output,
# and closes with the sum of their "N passed, M failed" lines.
B=${1:-build}
LOLCATS_BIN="$B/lolcats"; export LOLCATS_BIN
# scratch files of the tests live under build/ and build/tests/ (relative to the repo root)
mkdir -p build/tests
total_p=0; total_f=0; crashed=0
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL: $t exited $rc without a summary line"; crashed=$((crashed + 1))
        continue
    fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    total_p=$((total_p + p)); total_f=$((total_f + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL: $t exited $rc"; crashed=$((crashed + 1))
    fi
done
total_f=$((total_f + crashed))
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
