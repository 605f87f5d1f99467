# Parlor: `make` builds build/parlor; `make run` starts the chat server; `make test` runs
# everything CI runs. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
PORT ?= 5000

.PHONY: all deps web run test fuzz chaos clean format bench

all: $(BUILD)/parlor

deps:
	@scripts/deps.sh build

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLOR_WERROR=ON >/dev/null

$(BUILD)/parlor: deps $(BUILD)/Makefile FORCE
	cmake --build $(BUILD) -j$(JOBS)

FORCE:

web: deps
	@web/build.sh --if-stale

run: $(BUILD)/parlor web
	$(BUILD)/parlor serve --port $(PORT)

bench: $(BUILD)/parlor
	@bench/run.sh

test:
	@scripts/test.sh

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
