#!/bin/sh
# setup.sh - installs what lolcats.h needs on a fresh Debian/Ubuntu machine:
# a C compiler and make (required), libstb-dev and fonts-dejavu-core (optional:
# labelled PNG pictures),
# g++ (C++ compile test), gcc-aarch64-linux-gnu + qemu-user (the NEON path,
# tested under emulation), Open MPI (optional: multi-process distillation),
# clang (the fuzz harnesses), valgrind (memcheck of the command-line tool),
# python3-numpy + python3-pytest (the Python module's tests).
# Does nothing for packages already present.
set -e
need=""
command -v cc >/dev/null 2>&1 || need="$need build-essential"
command -v make >/dev/null 2>&1 || need="$need make"
command -v c++ >/dev/null 2>&1 || need="$need g++"
[ -f /usr/include/stb/stb_image_write.h ] && [ -f /usr/include/stb/stb_truetype.h ] || need="$need libstb-dev"
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need="$need fonts-dejavu-core"   # text in the pictures
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
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=sudo
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: not a Debian system; install by hand:$need" >&2
    exit 0
fi
echo "setup.sh: installing$need" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
