#!/bin/sh
# setup.sh - installs, on a Debian/Ubuntu machine, what lolcats.h needs.
#
#   sh tools/setup.sh          what the demo and the command-line tool need: a C
#                              compiler and make (required), libstb-dev and
#                              fonts-dejavu-core (optional: text in the PNG pictures)
#   sh tools/setup.sh --test   the above plus the test toolchain of `make check`:
#                              g++ (C++ compile test), gcc-aarch64-linux-gnu +
#                              qemu-user (the NEON path under emulation), Open MPI
#                              (multi-process distillation), clang + libFuzzer (the
#                              fuzz harnesses), valgrind, python3-numpy + pytest
#                              (the Python module's tests)
#
# Does nothing for packages already present. As root it runs apt-get; as a user
# with password-less sudo (or sudo on a terminal) it runs sudo apt-get; otherwise
# it prints the exact `sudo apt-get install ...` line to run and exits 0, so
# `sh tools/setup.sh && make demo` goes on with what is there.
set -e
mode=demo
for a in "$@"; do
    case "$a" in
        --test) mode="test" ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: error: unknown option '$a' (use --test or nothing)" >&2; exit 2 ;;
    esac
done

need=""
opt=""
# --- the demo: required
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v make >/dev/null 2>&1 || need="$need make"
# --- the demo: optional (labelled pictures)
{ [ -f /usr/include/stb/stb_image_write.h ] && [ -f /usr/include/stb/stb_truetype.h ]; } || opt="$opt libstb-dev"
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || opt="$opt fonts-dejavu-core"
if [ "$mode" = test ]; then
    command -v c++ >/dev/null 2>&1 || need="$need g++"
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need="$need gcc-aarch64-linux-gnu"
    # the cross compiler's C library is only a recommendation of it: ask for it explicitly
    [ -f /usr/aarch64-linux-gnu/include/stdio.h ] || need="$need libc6-dev-arm64-cross"
    command -v qemu-aarch64 >/dev/null 2>&1 || need="$need qemu-user"
    command -v mpicc >/dev/null 2>&1 || need="$need openmpi-bin libopenmpi-dev"
    command -v clang >/dev/null 2>&1 || need="$need clang"
    # libFuzzer's runtime is only a recommendation of clang: ask for it explicitly
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || need="$need libclang-rt-dev"
    command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
    # the Python module's tests (python/tests, run by make test): Debian's NumPy and pytest
    /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need="$need python3-numpy"
    /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || need="$need python3-pytest"
    need="$need$opt"   # the pictures' test wants the text too
    opt=""
fi
all="$need$opt"
[ -z "$all" ] && exit 0

line="sudo apt-get install -y --no-install-recommends$all"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: not a Debian/Ubuntu system (no apt-get); install by hand the equivalents of:$all" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && { sudo -n true >/dev/null 2>&1 || [ -t 0 ]; }; then
        SUDO=sudo
    else
        echo "setup.sh: not root and no sudo: these packages are missing; install them with" >&2
        echo "  $line" >&2
        [ -n "$opt" ] && echo "setup.sh: optional:$opt (without them the pictures lack text or are not drawn)" >&2
        [ -n "$need" ] && [ "$mode" = demo ] && echo "setup.sh: continuing; building needs the required ones:$need" >&2
        exit 0
    fi
fi
echo "setup.sh: installing$all" >&2
if $SUDO apt-get update -qq && \
   DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $all >/dev/null; then
    exit 0
fi
echo "setup.sh: apt-get failed; install them by hand with" >&2
echo "  $line" >&2
# the test toolchain is what `make check` runs: its absence is an error there
[ "$mode" = test ] && exit 1
exit 0
