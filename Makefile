# Thin wrapper over CMake. `make demo` and `make test` install what they need first (Debian, as root).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
V ?= 0
CTEST_FLAGS ?= --output-on-failure
ifeq ($(V),1)
  VERBOSE_FLAG := --verbose
endif

.PHONY: all build deps test test-gpu test-sanitize test-fuzz demo bench bench-scenario format format-check clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) $(VERBOSE_FLAG)

test: deps build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS) -LE gpu

test-gpu: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L gpu

test-sanitize: deps
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="-DFIKIT_SANITIZE=ON -DFIKIT_BENCHMARKS=OFF" build
	cd build-asan && ctest $(CTEST_FLAGS) -j $(JOBS) -LE 'gpu|nosan'

# libFuzzer targets for the decoders of tenant input (tests/fuzz/), FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
test-fuzz: deps
	cmake -S tests/fuzz -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14
	cmake --build build-fuzz -j $(JOBS)
	tests/fuzz/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

demo: deps build
	tools/fikit-demo --build $(BUILD)

bench: build
	tools/run-benchmarks --build $(BUILD)

# Policies on the simulated driver (a few minutes); the report goes to benchmarks/results/.
bench-scenario: build
	benchmarks/scenario/run_scenarios.py --build $(BUILD) \
	  --out benchmarks/results/scenario-$$(date +%F).md

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.c' | grep -v '^bpf/include/')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.cpp' '*.h' '*.c' | grep -v '^bpf/include/')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
