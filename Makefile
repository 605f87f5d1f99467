# Parlor: `make` builds build/parlor; `make run` starts the chat server; `make test` runs
# everything CI runs. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
PORT ?= 5000

.PHONY: all deps web run test test-pg fuzz chaos clean format bench cluster bench-cluster bench-webhooks

all: $(BUILD)/parlor

deps:
	@scripts/deps.sh build

# Configure only once the packages are there (order-only: deps runs first even with -j).
$(BUILD)/Makefile: CMakeLists.txt | deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLOR_WERROR=ON >/dev/null

# Inside `make -jN` the build joins make's jobserver ('+'); alone it uses every core.
# Quiet: warnings and errors only.
$(BUILD)/parlor: deps $(BUILD)/Makefile FORCE
	+@cmake --build $(BUILD) $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(JOBS)) -- --no-print-directory -s

FORCE:

web: deps
	@web/build.sh --if-stale

# The server prints the address to open once it listens.
run: $(BUILD)/parlor web
	@$(BUILD)/parlor serve --port $(PORT)

bench: $(BUILD)/parlor
	@bench/run.sh

# PostgreSQL, Redis, haproxy and 3 nodes on loopback with the web client (docs/cluster.md);
# prints the address to open; Ctrl-C stops everything.
cluster: $(BUILD)/parlor web
	@scripts/deps.sh cluster
	@PORT=$(PORT) PARLOR_BIN=$(BUILD)/parlor scripts/cluster.sh

# The load generator against 1, 2 and 3 nodes behind haproxy and against Node socket.io with
# the Redis adapter on 2 processes (docs/performance.md, "Cluster").
bench-cluster: $(BUILD)/parlor
	@scripts/deps.sh cluster
	@bench/cluster.sh

# Parlor with and without --webhook-url in one run, and a local receiver: webhooks' cost per
# message, delivery latency and deliveries/s (docs/webhooks.md, "Performance").
bench-webhooks: $(BUILD)/parlor
	@bench/webhooks.sh

test:
	@scripts/test.sh

# Only the PostgreSQL stages of `make test` (a private server, started and stopped).
test-pg:
	@scripts/test.sh pg

fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# Every operation broken off at random points, against the sanitizer build (10 minutes).
CHAOS_SECONDS ?= 600
chaos:
	@CHAOS_SECONDS=$(CHAOS_SECONDS) scripts/chaos.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
