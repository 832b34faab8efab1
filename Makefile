# Thin wrapper over CMake. `make demo` and `make test` install what they need first (Debian, as root).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
V ?= 0
CTEST_FLAGS ?= --output-on-failure
ifeq ($(V),1)
  VERBOSE_FLAG := --verbose
endif

.PHONY: all build deps test test-gpu test-sanitize demo bench bench-scenario format format-check clean \
        install

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

# Install into $(DESTDIR)$(PREFIX): the build is configured with that prefix first, since fikit-run
# and the systemd unit carry installed paths.
PREFIX ?= /usr/local
DESTDIR ?=
install: $(BUILD)/CMakeCache.txt
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS) $(VERBOSE_FLAG)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
