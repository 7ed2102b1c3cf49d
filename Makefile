# advprune: `make demo` runs the embedded default job, `make test` the whole test suite.
SWIFT ?= swift
# Swift debug builds run numeric loops very slowly: tests run on a release build with testing on.
TEST_FLAGS = -c release -Xswiftc -enable-testing

.PHONY: deps build demo test lint format validate bench check-report clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

demo: build
	.build/release/advprune demo

test: deps
	$(SWIFT) test $(TEST_FLAGS)

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift fuzz/Sources fuzz/Package.swift

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift fuzz/Sources fuzz/Package.swift

validate: build
	.build/release/advprune validate --device opencl

bench: build
	./scripts/bench-throughput.sh

# The smoke grid -> report -> headless Chromium check (CI runs it after the tests).
check-report: build
	./scripts/check-report.sh

clean:
	rm -rf .build runs
