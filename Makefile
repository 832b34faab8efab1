# Thin wrapper over CMake. `make demo` and `make test` install what they need first (Debian, as root).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
V ?= 0
CTEST_FLAGS ?= --output-on-failure
ifeq ($(V),1)
  VERBOSE_FLAG := --verbose
endif

.PHONY: all build deps test test-gpu test-sanitize test-fuzz demo bench bench-scenario format format-check clean \
        install deb test-deb

all: build

deps:
	@scripts/install-deps.sh

# ccache, where the machine has it: the plain, package and sanitizer builds compile the same sources,
# and a clone in another folder hits the same cache (paths relative to the checkout).
CCACHE := $(if $(shell command -v ccache),-DCMAKE_C_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CCACHE) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) $(VERBOSE_FLAG)

test: deps build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS) -LE gpu
	$(MAKE) test-deb

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

# Policies on the simulated driver (about 10 minutes on 2 cores; SCENARIO_FLAGS=--quick: a few);
# the report, its JSON and the Pareto figure go to benchmarks/results/.
SCENARIO_FLAGS ?= --repeat 2 --model-requests 150
bench-scenario: build
	benchmarks/scenario/run_scenarios.py --build $(BUILD) $(SCENARIO_FLAGS) \
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

# The Debian package, from a build of its own with prefix /usr (only what the package holds is
# built): $(DEB_BUILD)/fikit_<version>_<arch>.deb. A package runs where Debian's libraries are, so
# it links liburing, libbpf, libelf and zlib as shared libraries (its Depends say which), not
# statically as the plain build does. `make test-deb` (part of `make test`) also lints, installs,
# runs and removes it, as root, in a sandbox that leaves the machine unchanged
# (tests/packaging/deb_test.sh).
DEB_BUILD ?= build-deb
DEB_LIBDIR := /usr/lib/$(shell gcc -dumpmachine)
DEB_SHARED_LIBS := -DURING_LIB_PATH=$(DEB_LIBDIR)/liburing.so -DBPF_LIB_PATH=$(DEB_LIBDIR)/libbpf.so \
  -DELF_LIB_PATH=$(DEB_LIBDIR)/libelf.so -DZ_LIB_PATH=$(DEB_LIBDIR)/libz.so
deb: deps
	cmake -S . -B $(DEB_BUILD) $(CCACHE) $(CMAKE_FLAGS) -DCMAKE_INSTALL_PREFIX=/usr -DFIKIT_DEB=ON \
	  -DFIKIT_BENCHMARKS=OFF -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON $(DEB_SHARED_LIBS)
	cmake --build $(DEB_BUILD) -j $(JOBS) $(VERBOSE_FLAG) --target fikit_package_files
	cd $(DEB_BUILD) && cpack -G DEB

# Exit 77 from the test is a skip (not root, fikit installed, /etc/fikit or /var/lib/fikit there).
test-deb: deb
	tests/packaging/deb_test.sh $(DEB_BUILD)/fikit_*.deb || [ $$? = 77 ]

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(DEB_BUILD)
