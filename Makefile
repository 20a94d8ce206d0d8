# lolcats.h - build, test and check.  `make` builds everything under build/,
# `make test` runs the suite (last line: "N passed, M failed"), `make check`
# builds every variant with -Werror and runs the suite under sanitizers.
CC      ?= cc
CXX     ?= c++
OPT     ?= -O2
WARN     = -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion \
           -Wstrict-prototypes -Wmissing-prototypes -Wvla
CSTD    ?= -std=c99
CFLAGS  ?= $(OPT) -g
LDLIBS   = -lm
B        = build
MAKEFLAGS += --no-print-directory

# OpenMP is optional: used when the compiler accepts -fopenmp.
OMP := $(shell printf 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
ifeq ($(NO_OMP),1)
OMP :=
endif
ALL_CFLAGS = $(CSTD) $(CFLAGS) $(WARN) $(OMP) -I.

TOOLS_SRC  = $(wildcard tools/*.c)
TESTS      = $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
EXAMPLES   = $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
BENCHES    = $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))

.PHONY: all test check check-neon bench clean golden demo nofast

all: $(B)/lolcats $(TESTS) $(EXAMPLES) $(BENCHES)

# MPI is optional too: with mpicc on the PATH the tool is built with it (the
# library never touches MPI; tools/mpi.c is the glue). NO_MPI=1 turns it off.
MPICC := $(shell command -v mpicc 2>/dev/null)
ifeq ($(NO_MPI),1)
MPICC :=
endif
ifneq ($(MPICC),)
TOOL_CC = OMPI_CC=$(CC) $(MPICC) -DLOLCATS_TOOL_MPI
else
TOOL_CC = $(CC)
endif

$(B)/lolcats: $(TOOLS_SRC) tools/*.h lolcats.h
	@mkdir -p $(B)
	$(TOOL_CC) $(ALL_CFLAGS) -o $@ $(TOOLS_SRC) $(LDLIBS)

# `make shared`: build/liblolcats.so, the header's implementation as a shared
# library (what python/lolcats loads through ctypes).
.PHONY: shared
shared: $(B)/liblolcats.so
$(B)/liblolcats.so: lolcats.h
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -DLOLCATS_IMPLEMENTATION -x c -o $@ lolcats.h $(LDLIBS)

$(B)/tests/%: tests/%.c $(wildcard tests/*.h) lolcats.h
	@mkdir -p $(B)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

# two translation units sharing one implementation
$(B)/tests/test_two_tu: tests/test_two_tu.c tests/two_tu_b.c lolcats.h
	@mkdir -p $(B)/tests
	$(CC) $(ALL_CFLAGS) -o $@ tests/test_two_tu.c tests/two_tu_b.c $(LDLIBS)

# the pictures test draws through the tools' plot layer
$(B)/tests/test_plot: tests/test_plot.c tools/plot.c tools/plot.h tools/report.c tools/report.h tools/report_index.c \
                      tools/report_index.h tools/outsafe.c tools/outsafe.h tests/check.h
	@mkdir -p $(B)/tests
	$(CC) $(ALL_CFLAGS) -o $@ tests/test_plot.c tools/plot.c tools/report.c tools/report_index.c tools/outsafe.c $(LDLIBS)

# the pipeline test reads data through the tools' data module
$(B)/tests/test_pipeline: tests/test_pipeline.c tools/data.c tools/data.h lolcats.h tests/check.h
	@mkdir -p $(B)/tests
	$(CC) $(ALL_CFLAGS) -o $@ tests/test_pipeline.c tools/data.c $(LDLIBS)

# the eval-task test links the tools' task readers and scoring rules
$(B)/tests/test_evaltask: tests/test_evaltask.c tools/evaltask.c tools/evaltask.h lolcats.h tests/check.h tests/tiny_files.h
	@mkdir -p $(B)/tests
	$(CC) $(ALL_CFLAGS) -o $@ tests/test_evaltask.c tools/evaltask.c $(LDLIBS)

$(B)/examples/%: examples/%.c lolcats.h
	@mkdir -p $(B)/examples
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

# `make examples`: the teaching track (examples/README.md); tests/test_examples builds each
# with plain `cc -O2 ... -lm` and runs it. `make examples-check`: each also with
# -DLOLCATS_NO_SIMD and as C++, -Werror.
.PHONY: examples examples-check
examples: $(EXAMPLES)
examples-check:
	@mkdir -p $(B)/examples-check
	@for f in examples/[0-9][0-9]_*.c; do n=$$(basename $$f .c); echo "$$f: -DLOLCATS_NO_SIMD, C++"; \
	  $(CC) $(CSTD) -O2 $(WARN) -Werror -DLOLCATS_NO_SIMD -o $(B)/examples-check/$$n $$f $(LDLIBS) && \
	  $(CXX) -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only $$f || exit 1; done

$(B)/bench/%: bench/%.c lolcats.h
	@mkdir -p $(B)/bench
	$(CC) $(ALL_CFLAGS) -O3 -o $@ $< $(LDLIBS)

test: $(B)/lolcats $(TESTS) $(EXAMPLES) $(B)/liblolcats.so
	@sh tests/run.sh $(B)

# Every variant with -Werror, the suite under ASan+UBSan, scalar-only, C++.
check:
	$(MAKE) -j$(CHECK_J) B=build/werror-c11 CSTD=-std=c11 CFLAGS="-O2 -Werror" all
	$(MAKE) -j$(CHECK_J) B=build/nosimd CFLAGS="-O2 -Werror -DLOLCATS_NO_SIMD" test
	$(MAKE) -j$(CHECK_J) sanitize
	@mkdir -p build/cxx
	$(CXX) -x c++ -std=c++11 -O2 -Wall -Wextra -Wpedantic -Werror -I. -o build/cxx/test_compile tests/test_compile.c -lm
	./build/cxx/test_compile
	@if command -v clang >/dev/null 2>&1; then $(MAKE) -j$(CHECK_J) B=build/clang CC=clang NO_OMP=1 CFLAGS="-O1 -Werror" all; \
	else echo "SKIPPED: clang build (no clang; run tools/setup.sh)"; fi
	$(MAKE) check-neon
	$(MAKE) valgrind
	$(MAKE) fuzz-regress
	$(MAKE) walkthrough-check
	$(MAKE) -j$(CHECK_J) B=build/werror-c99 CFLAGS="-O2 -Werror" test

# `make check` compiles its variants with one job per CPU (CHECK_J=1: one at
# a time); the test programs themselves always run one after another.
CHECK_J ?= $(shell nproc 2>/dev/null || echo 1)

# `make nofast`: the reference-only build (-DLOLCATS_NO_FAST: no SIMD code, no
# fast forms, every kernel-table entry NULL) of the kernel tests.
NOFAST_TESTS = test_kernels test_grad test_switch test_lolcats_infer
# (make check runs the whole suite under -DLOLCATS_NO_SIMD, which implies NO_FAST: the same build)
nofast:
	$(MAKE) B=build/nofast CFLAGS="-O2 -Werror -DLOLCATS_NO_FAST" build/nofast/lolcats \
	  $(patsubst %,build/nofast/tests/%,$(NOFAST_TESTS))
	@for t in $(NOFAST_TESTS); do out=$$(LOLCATS_BIN=build/nofast/lolcats build/nofast/tests/$$t 2>&1) || \
	  { echo "$$out"; echo "nofast: $$t FAILED"; exit 1; }; echo "nofast $$t: $$(echo "$$out" | tail -n 1)"; done

# `make compile-time`: user seconds of the implementation TU at -O2, best of 3, for
# the default build and each opt-out (the machine's load inflates them: compare side by side).
.PHONY: compile-time
compile-time:
	@for d in "" "-DLOLCATS_NO_FAST" "-DLOLCATS_NO_FILES" "-DLOLCATS_NO_FAST -DLOLCATS_NO_FILES"; do best=; \
	  for r in 1 2 3; do t=$$( { /usr/bin/time -f %U $(CC) -O2 -c -x c -DLOLCATS_IMPLEMENTATION $$d lolcats.h \
	    -o /dev/null; } 2>&1 | tail -n 1); best=$$(printf '%s\n%s\n' "$$t" "$$best" | grep . | sort -n | head -n 1); done; \
	  echo "compile-time -O2 $${d:-(default)}: $$best s"; done

# `make sanitize`: the whole suite and every example under ASan + UBSan.
sanitize:
	$(MAKE) B=build/asan NO_OMP=1 NO_MPI=1 CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

# `make valgrind`: the command-line tool under valgrind memcheck (tools/valgrind.sh).
valgrind:
	@if command -v valgrind >/dev/null 2>&1; then \
	  $(MAKE) B=build/valgrind NO_OMP=1 NO_MPI=1 CFLAGS="-O1 -g" build/valgrind/lolcats && sh tools/valgrind.sh build/valgrind/lolcats; \
	else echo "SKIPPED: valgrind (not installed; run tools/setup.sh)"; fi

# The NEON path: cross-compiled static tests run under qemu (skipped when the
# cross compiler or qemu is absent).
AARCH64_CC ?= aarch64-linux-gnu-gcc
check-neon:
	@if command -v $(AARCH64_CC) >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; then \
	  mkdir -p build/neon && for t in test_grad test_kernels test_gemm test_lolcats_infer test_switch test_xent_fast test_prims; do \
	    $(AARCH64_CC) -std=c99 -O2 -static $(WARN) -Werror -I. -o build/neon/$$t tests/$$t.c -lm || exit 1; \
	    echo "== neon $$t"; qemu-aarch64 build/neon/$$t | tail -n 1; \
	    qemu-aarch64 build/neon/$$t >/dev/null || exit 1; \
	  done; \
	else echo "SKIPPED: NEON check (no $(AARCH64_CC) or qemu-aarch64; run tools/setup.sh)"; fi

# The main job on its embedded default: the whole pipeline on a toy language.
# Needs only a C compiler and make (DEMO_FLAGS="--scale 0.1": a quick run).
demo: $(B)/lolcats
	./$(B)/lolcats demo --report $(B)/demo $(DEMO_FLAGS)

# The README's walkthrough run as written, every figure it shows compared with
# what the commands print (tools/check_walkthrough.py; needs ../shared).
.PHONY: walkthrough-check
walkthrough-check: $(B)/lolcats
	@if [ -x /usr/bin/python3 ]; then /usr/bin/python3 tools/check_walkthrough.py --bin $(B)/lolcats; \
	else echo "SKIPPED: the README walkthrough check (no /usr/bin/python3)"; fi

bench: $(BENCHES) $(B)/lolcats
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

golden:
	/usr/bin/python3 tools/gen_golden.py tests/data

# libFuzzer harnesses (clang): `make fuzz` builds them, `make fuzz-run` runs each
# for FUZZ_TIME seconds from its seed corpus fuzz/corpus_<name>/ (new inputs go
# to $(B)/fuzz/corpus_<name>/, the seeds stay untouched).
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZERS    = $(patsubst fuzz/%.c,$(B)/fuzz/%,$(wildcard fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-run fuzz-regress sanitize valgrind
fuzz: $(FUZZERS)

$(B)/fuzz/%: fuzz/%.c lolcats.h
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) -I. -o $@ $<

# the data harness links the tools' data reader
$(B)/fuzz/fuzz_data: fuzz/fuzz_data.c tools/data.c tools/data.h lolcats.h
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) -I. -o $@ fuzz/fuzz_data.c tools/data.c

fuzz-run: fuzz
	@for f in $(FUZZERS); do n=$${f##*/fuzz_}; mkdir -p $(B)/fuzz/corpus_$$n; \
	  echo "== $$f ($(FUZZ_TIME) s)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -artifact_prefix=$(B)/fuzz/ $(B)/fuzz/corpus_$$n fuzz/corpus_$$n || exit 1; done

# CI's fuzz regression: every harness replays its seed corpus, then fuzzes for
# FUZZ_REGRESS_TIME seconds (skipped when clang cannot link libFuzzer).
FUZZ_REGRESS_TIME ?= 10
fuzz-regress:
	@if printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' | \
	  $(FUZZ_CC) -x c -fsanitize=fuzzer -o /tmp/lolcats_fuzz_probe - >/dev/null 2>&1; then \
	  $(MAKE) B=build fuzz && for f in $(patsubst $(B)/%,build/%,$(FUZZERS)); do n=$${f##*/fuzz_}; \
	    rm -rf build/fuzz/regress_$$n && mkdir -p build/fuzz/regress_$$n; echo "== $$f ($(FUZZ_REGRESS_TIME) s)"; \
	    $$f -max_total_time=$(FUZZ_REGRESS_TIME) -timeout=10 -artifact_prefix=build/fuzz/ -rss_limit_mb=2048 -print_final_stats=1 \
	      build/fuzz/regress_$$n fuzz/corpus_$$n >build/fuzz/regress_$$n.log 2>&1 \
	      || { tail -n 40 build/fuzz/regress_$$n.log; echo "FAIL: $$f (log build/fuzz/regress_$$n.log)"; exit 1; }; \
	    grep -E "stat::number_of_executed_units" build/fuzz/regress_$$n.log; \
	  done; \
	else echo "SKIPPED: fuzz regression ($(FUZZ_CC) cannot link libFuzzer; run tools/setup.sh)"; fi

clean:
	rm -rf build
