# Thin wrapper around CMake (the real build). Targets:
#   make run           install missing packages, build release, run the daemon (scripts/run.sh)
#   make build         install missing packages, configure + build build/release
#   make test          install missing packages (+ test ones), build build/asan (clang,
#                      ASan+UBSan, libFuzzer targets), run ctest
#   make install       cmake --install build/release  (PREFIX=/usr, DESTDIR=... honoured)
#   make format        clang-format -i over the C sources; format-check only reports
#   make clean         remove build/ (distclean also removes .run/, the dev Redis data)
# Variables: CONFIG (for run), JOBS (build parallelism), PREFIX, DESTDIR, CTEST_ARGS.

SHELL := /bin/bash
MAKEFLAGS += --no-print-directory
.SHELLFLAGS := -eu -o pipefail -c
# Steps share apt/dpkg and the build trees: run them one after another; cmake --build and
# ctest do their own parallelism.
.NOTPARALLEL:
.DEFAULT_GOAL := build

RELEASE_DIR := build/release
ASAN_DIR := build/asan
CONFIG ?= config/omnirouter.yaml
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
PREFIX ?=
FORMAT_DIRS := common router channels adapters include tests bench

.PHONY: all run build build-asan test deps deps-test install format format-check clean distclean

all: build

deps:
	scripts/deps.sh

deps-test:
	scripts/deps.sh --test

build: deps
	cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(RELEASE_DIR) --parallel $(JOBS)

run: build
	scripts/run.sh $(CONFIG)

build-asan: deps-test
	cmake -S . -B $(ASAN_DIR) -DCMAKE_C_COMPILER=clang -DOMR_SANITIZE=ON -DOMR_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=Debug
	cmake --build $(ASAN_DIR) --parallel $(JOBS)

# ctest prints its own summary ("N% tests passed, M tests failed out of K") and exits
# non-zero when a test fails, which fails make.
test: build-asan
	ctest --test-dir $(ASAN_DIR) --output-on-failure -j2 $(CTEST_ARGS)

install: build
	cmake --install $(RELEASE_DIR) $(if $(PREFIX),--prefix $(PREFIX))

# Sources: every *.c / *.h under FORMAT_DIRS that exist.
format_dirs = $(wildcard $(FORMAT_DIRS))
format_sources = $(if $(format_dirs),$(shell find $(format_dirs) -type f \( -name '*.c' -o -name '*.h' \) | sort))

format:
	@command -v clang-format >/dev/null || scripts/deps.sh --dev
	@files="$(format_sources)"; \
	if [ -n "$$files" ]; then clang-format -i $$files; echo "formatted $$(echo $$files | wc -w) files"; fi

format-check:
	@command -v clang-format >/dev/null || scripts/deps.sh --dev
	@files="$(format_sources)"; \
	if [ -n "$$files" ]; then clang-format --dry-run -Werror $$files; fi; \
	echo "format-check: $$(echo $$files | wc -w) files formatted as .clang-format says"

clean:
	rm -rf build

distclean: clean
	rm -rf .run
