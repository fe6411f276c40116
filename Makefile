# A thin front door over CMake: installs the Debian packages that are missing, configures and
# builds. `make` builds, `make test` runs the suite, `make test SANITIZE=1` runs it under
# AddressSanitizer + UBSan, `make bench` runs the benchmarks, `make demo` runs the engine.

SANITIZE ?=
ifeq ($(SANITIZE),1)
BUILD ?= build-sanitize
CMAKE_FLAGS += -DRP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
else
BUILD ?= build
endif
BENCH_BUILD ?= build-release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PACKAGES := $(shell grep -v '^\#' debian-packages.txt)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps browser-deps build test bench demo clean

all: build

# Installs only what is missing, so a machine that has everything never calls apt-get.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The browser tests' playwright-core, pinned by tests/browser/package-lock.json, when it is
# missing; npm is Debian's package unless the installed nodejs brings its own.
browser-deps: deps
	@if ! command -v npm >/dev/null; then \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
	fi
	@if [ ! -d tests/browser/node_modules/playwright-core ]; then \
	  echo "Installing the browser tests' npm packages (tests/browser)"; \
	  cd tests/browser && npm ci --no-audit --no-fund; \
	fi

test: build browser-deps
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BENCH_BUILD) -j $(JOBS)
	RAPPORT_BENCH_DIR=$(BENCH_BUILD)/bench bash bench/run.sh

demo: build
	RAPPORT=$(BUILD)/rapport bash examples/demo.sh

clean:
	rm -rf build build-sanitize build-release

# `make install [PREFIX=/usr/local]`: the binary, the default scripts, the built-in plugins and
# the plugin SDK (header, rapport-plugin.pc, the RapportPlugin CMake package) under PREFIX.
# A build folder of its own, because the installed binary is compiled to look in PREFIX.
PREFIX ?= /usr/local
INSTALL_BUILD ?= build-install

.PHONY: install clean-install

install: deps
	cmake -S . -B $(INSTALL_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(INSTALL_BUILD) -j $(JOBS)
	cmake --install $(INSTALL_BUILD)

clean: clean-install
clean-install:
	rm -rf $(INSTALL_BUILD)
