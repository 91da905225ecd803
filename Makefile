# The README's commands. Everything real lives in CMake and scripts/; this file only strings
# them together so that one command works on a fresh Debian 12 machine.
#
#   make test    install what is missing, build, run every test (plain, then ASan+UBSan build)
#   make demo    build and run scripts/demo.sh
#
# Warnings are errors only where the people who can fix them build: `make test` (which CI runs,
# .ci/run) turns them on; `make build` and `make demo` leave them off, so a newer compiler's new
# warning never stops someone who only wants to run Outpost (WERROR=ON to choose otherwise).
#   make bench   build optimised and print every benchmark's name=value figures
#   make test-arm  the device side cross-built for armhf and arm64, its tests under qemu-user
#                (part of `make test`; `make test ARM_ARCHES=` leaves it out, docs/arm.md)
.PHONY: all deps build demo install package test test-plain test-asan test-arm bench clean

BUILD       ?= build
ASAN_BUILD  ?= build-asan
BENCH_BUILD ?= build-bench
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
WERROR      ?= OFF
CMAKE_COMMON = -DOUTPOST_WERROR=$(WERROR) -DOUTPOST_DEPS_PREFIX=$$(cat $(BUILD_DEPS_STAMP))
BUILD_DEPS_STAMP = .deps-prefix

all: build

# scripts/deps.sh installs missing Debian packages and builds mbedTLS + lws into a cache outside
# the tree (a no-op when both are there); its last line is the prefix.
deps:
	@scripts/deps.sh > $(BUILD_DEPS_STAMP).tmp && tail -n1 $(BUILD_DEPS_STAMP).tmp > $(BUILD_DEPS_STAMP) && rm -f $(BUILD_DEPS_STAMP).tmp

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_COMMON) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The build as one line per part (the compiler's output goes to $(BUILD)/build.log), then the demo.
demo: deps
	@scripts/build-quiet.sh $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_COMMON)
	@scripts/demo.sh $(BUILD)

# liboutpost (headers, shared and static library, outpost.pc, OutpostConfig.cmake) and the
# binaries, into PREFIX (DESTDIR works as usual): docs/library.md, docs/operations.md.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Debian packages (liboutpost1, liboutpost-dev, outpost, outpostd) into $(BUILD)/packages.
package: build
	scripts/package.sh $(BUILD) $(BUILD)/packages

# scripts/ctest-guarded.sh runs ctest, then fails the run on a failed cmocka group teardown or a
# skipped test (OUTPOST_ALLOW_SKIPS=1 accepts skips).
test-plain: build
	scripts/ctest-guarded.sh $(BUILD) --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOUTPOST_SANITIZE=ON $(CMAKE_COMMON) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    scripts/ctest-guarded.sh $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# The device side (protocol, liboutpost, the CLI and their tests) cross-built for each of
# ARM_ARCHES with the toolchain file scripts/deps.sh --arch writes, every test run under qemu-user
# by ctest (CMAKE_CROSSCOMPILING_EMULATOR). CI runs it; `make test ARM_ARCHES=` skips it.
ARM_ARCHES ?= armhf arm64
test-arm:
	@set -e; for arch in $(ARM_ARCHES); do \
	    deps_out=$$(scripts/deps.sh --arch $$arch); prefix=$$(echo "$$deps_out" | tail -n1); \
	    echo "== $$arch: build $(BUILD)-$$arch, tests under qemu-user"; \
	    cmake -S . -B $(BUILD)-$$arch -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_WERROR=$(WERROR) \
	        -DCMAKE_TOOLCHAIN_FILE=$$prefix/toolchain.cmake \
	        -DOUTPOST_DEPS_PREFIX=$$prefix >/dev/null; \
	    cmake --build $(BUILD)-$$arch -j $(JOBS); \
	    scripts/ctest-guarded.sh $(BUILD)-$$arch --output-on-failure -j $(JOBS); \
	done

test: test-plain test-asan test-arm
test test-plain test-asan test-arm: WERROR = ON

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_COMMON) >/dev/null
	cmake --build $(BENCH_BUILD) -j $(JOBS)
	@for b in $$(cat $(BENCH_BUILD)/benchmarks.txt); do \
	    echo "# $$b"; (cd $(BENCH_BUILD) && OUTPOST_SOURCE_DIR=$(CURDIR) ./bench/$$b) || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) $(BUILD)-armhf $(BUILD)-arm64 $(BUILD_DEPS_STAMP)
