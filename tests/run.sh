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
# issue 18: no function of lolcats.h over 120 lines (tools/fnlen.py lists them)
echo "== tools/fnlen.py lolcats.h"
if command -v python3 >/dev/null 2>&1; then
    out=$(python3 tools/fnlen.py lolcats.h 2>&1); rc=$?
    printf '%s\n' "$out"
    if [ "$rc" -eq 0 ]; then
        total_p=$((total_p + 1))
    else
        echo "FAIL: tools/fnlen.py: a function of lolcats.h is over 120 lines (split it)"; crashed=$((crashed + 1))
    fi
else
    echo "SKIPPED: tools/fnlen.py (no python3)"
fi
# the Python module (python/lolcats over $B/liblolcats.so) against $B/lolcats
echo "== pytest python/tests"
if ! /usr/bin/python3 -c 'import numpy, pytest' >/dev/null 2>&1; then
    echo "SKIPPED: python/tests (needs /usr/bin/python3 with numpy and pytest: tools/setup.sh)"
elif [ ! -f "$B/liblolcats.so" ]; then
    echo "SKIPPED: python/tests (no $B/liblolcats.so: make shared)"
elif ldd "$B/liblolcats.so" 2>/dev/null | grep -q 'lib[at]san'; then
    echo "SKIPPED: python/tests (a sanitizer build of $B/liblolcats.so does not load into python3)"
else
    out=$(LOLCATS_LIB="$B/liblolcats.so" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider --basetemp="build/tests/pytest-$(basename "$B")" python/tests 2>&1); rc=$?
    printf '%s\n' "$out"
    last=$(printf '%s\n' "$out" | tail -n 1)
    p=$(printf '%s' "$last" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p; s/^\([0-9][0-9]*\) passed.*/\1/p' | head -n 1)
    f=$(printf '%s' "$last" | sed -n 's/^\([0-9][0-9]*\) failed.*/\1/p' | head -n 1)
    total_p=$((total_p + ${p:-0})); total_f=$((total_f + ${f:-0}))
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then echo "FAIL: pytest exited $rc"; crashed=$((crashed + 1)); fi
fi
total_f=$((total_f + crashed))
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
