# feast-sqlreg: everything from a fresh Debian machine.
#   make demo   build, then run the main job on the embedded SQLite default
#   make test   build, start the database servers, run every test
#   make bench  native vs stock registry, side by side (benchmarks/)
#   make bench-serve  the serving path: cached gets, `feast serve` by feature service

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Debian packages: compiler inputs, client libraries, and the servers tests use.
APT_PACKAGES := gcc pkg-config libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler \
                libpq-dev libmariadb-dev libnghttp2-dev libssl-dev postgresql \
                mariadb-server pgbouncer galera-4 rsync
# Python packages the tests and benchmarks need besides Feast (the stock
# registry's drivers, Feast's gRPC extra for `feast serve_registry`, and
# cryptography, which PyJWT needs for the RS256 tokens of OIDC auth).
TEST_PACKAGES := "feast[grpcio]" pytest pytest-xdist "psycopg[binary]" pymysql cryptography
# src/SOURCES is the one list of the extension modules' sources (its
# header says the format); $(call src_of,MODULE) gives MODULE's files there,
# as paths from here, in the list's order.
src_of = $(addprefix src/,$(shell sed -n 's/^$(1):[[:space:]]*//p' src/SOURCES))
MODULES := $(sort $(shell sed -n 's/^\([A-Za-z0-9_]*\):.*/\1/p' src/SOURCES))
ALL_SOURCES := $(sort $(foreach m,$(MODULES),$(call src_of,$(m))))
CORE_C := $(filter %.c,$(call src_of,_sqlregistry))
# The .proto files, and the command that compiles them into directory $(1);
# $(call proto_c,DIR): the C files that makes.
PROTOS := $(filter %.proto,$(ALL_SOURCES))
protoc = protoc-c $(addprefix --proto_path=,$(sort $(dir $(PROTOS)))) --c_out=$(1) $(notdir $(PROTOS))
proto_c = $(patsubst %.proto,$(1)/%.pb-c.c,$(notdir $(PROTOS)))
SOURCES := $(ALL_SOURCES) src/SOURCES $(wildcard src/*/*.h feast_sqlreg/*.py) \
           feast_sqlreg_hook.py feast_sqlreg.pth setup.py pyproject.toml

.PHONY: all deps install demo test test-ha ctest bench databases clean

all: install

deps: .stamp-deps
.stamp-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q feast $(TEST_PACKAGES)
	@touch $@

# Installs the package the way users do (wheel, .pth hook and all).
$(VENV)/.stamp-install: .stamp-deps $(VENV)/.stamp $(SOURCES)
	$(PIP) install -q --no-build-isolation --no-deps --force-reinstall .
	@touch $@

install: $(VENV)/.stamp-install

demo: install
	$(PY) scripts/demo.py --require-native --jobs 4

databases: deps
	scripts/databases.sh

# pytest runs from tests/ so the source tree's feast_sqlreg/ (no compiled
# core) cannot shadow the installed package.
test: install databases ctest
	$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=60
	cd tests && ../$(VENV)/bin/pytest -p no:cacheprovider -n 2 --dist loadgroup -q .

# The HA databases alone (also part of `make test`): a three-node MariaDB
# Galera cluster (galera-4; rsync state transfers) with writers on every
# node and a node killed, PostgreSQL primary + synchronous standby failover
# with a multi-host URL, and the errors servers raise mid-call. About 5
# minutes; the servers are private, made and removed by the tests.
HA_TESTS := test_galera.py test_pg_failover.py test_server_errors.py
test-ha: install databases
	cd tests && ../$(VENV)/bin/pytest -p no:cacheprovider -q -s $(HA_TESTS)

# The C layers below Python (url, pb, pool, store on SQLite) under
# AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer, with no
# Python involved. Every tests/c/test_*.c is a program of its own (each ends
# with a "N passed, N failed" line), linked against the same objects: every
# C file of src/SOURCES outside src/python/ (the Python-facing layer), so
# the PostgreSQL and MySQL drivers are linked in and a program registers
# those it uses (db_register_driver), as the backend modules do under
# Python. First, scripts/check_layout.sh: no include goes up a layer, and
# src/SOURCES lists every source under src/.
CTEST_SOURCES := $(filter-out src/python/%,$(filter %.c,$(ALL_SOURCES)))
CLIBS := sqlite3 libprotobuf-c libpq libmariadb libnghttp2 openssl
CTESTS := $(patsubst tests/c/%.c,build/ctest/%,$(wildcard tests/c/test_*.c))
CTEST_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -DFEAST_SQLREG_HAVE_PG -DFEAST_SQLREG_HAVE_MYSQL \
  -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -Wall -Wextra -Wshadow -Werror -Isrc -Ibuild/ctest
ctest: deps
	scripts/check_layout.sh
	mkdir -p build/ctest
	$(call protoc,build/ctest)
	@set -e; for t in $(CTESTS); do \
	  gcc $(CTEST_CFLAGS) $$(pkg-config --cflags $(CLIBS)) tests/c/$$(basename $$t).c \
	    $(CTEST_SOURCES) $(call proto_c,build/ctest) -o $$t $$(pkg-config --libs $(CLIBS)) -pthread; \
	  echo "== $$t"; $$t; \
	done

bench: install databases
	$(PY) benchmarks/run.py

# Registries of 1,000 and 5,000 views on every backend (about 40 minutes;
# stock's apply of 5,000 views is not run: about 10 minutes per backend
# alone); writes the "## Large registries" section of RESULTS.md.
LARGE_BACKENDS ?= sqlite,sqlite-wal,postgresql,mysql
.PHONY: bench-large
bench-large: install databases
	$(PY) benchmarks/run.py --backends $(LARGE_BACKENDS) --sizes 1000,5000 \
	  --scenarios apply,reapply,noop_apply,noop_plan,apply_one --limit apply=1000 \
	  --section "Large registries"

# The serving path (benchmarks/serve.py): cached gets, and `feast serve`
# answering by feature service, stock and native on one database kind;
# writes the "## Serving path" section of RESULTS.md.
# SERVE_BACKEND=postgresql|mysql for a server-backed registry.
SERVE_BACKEND ?= sqlite
.PHONY: bench-serve
bench-serve: install databases
	$(PY) benchmarks/serve.py --backend $(SERVE_BACKEND)

# Replicas of `feast serve_registry` on one PostgreSQL registry, stock then
# native (benchmarks/fleet.py); writes the "## Fleet" section of RESULTS.md.
# fleet-pgbouncer: the same through PgBouncer in transaction mode;
# fleet-standby: the replicas reading from the hot standby (read_path).
# fleet-secure: with TLS, then TLS and OIDC auth (a local provider).
.PHONY: fleet fleet-pgbouncer fleet-standby fleet-secure
fleet: install databases
	$(PY) benchmarks/fleet.py
fleet-pgbouncer: install databases
	$(PY) benchmarks/fleet.py --pgbouncer
fleet-standby: install databases
	$(PY) benchmarks/fleet.py --standby
fleet-secure: install databases
	$(PY) benchmarks/fleet.py --tls
	$(PY) benchmarks/fleet.py --tls --oidc

# Long run through NativeSqlRegistry watching RSS for leaks (benchmarks/soak.py);
# fails if memory grows past its bound. Not part of `make test`.
SOAK_BACKENDS ?= sqlite postgresql mysql
SOAK_OPS ?= 100000
.PHONY: soak
soak: install databases
	@set -e; for b in $(SOAK_BACKENDS); do $(PY) benchmarks/soak.py --backend $$b --ops $(SOAK_OPS); done

clean:
	rm -rf build dist *.egg-info .stamp-deps $(VENV)/.stamp-install

# libFuzzer targets, one per src/pb/pb.c function that parses stored bytes
# (tests/fuzz/fuzz_*.c; their invariants live in tests/fuzz/fuzz_checks.h),
# and one over the front's request path, client bytes through nghttp2 to an
# answer (fuzz_front.c, tests/fuzz/front_checks.h; it links the layers the
# front stands on, libnghttp2 and OpenSSL, whose TLS the plaintext seam it
# drives never enters), built with clang under AddressSanitizer
# and UndefinedBehaviorSanitizer. Every target takes the core's files of
# src/common/ and src/pb/ from src/SOURCES; fuzz_front also those of
# src/db/, src/store/ and src/front/ (so SQLite's driver only).
# `make fuzz-run FUZZ_SECONDS=60` splits the time across the targets, over a
# copy of tests/fuzz/corpus in build/ (the source tree is never written),
# prints each target's executions and fails on any crash (inputs kept in
# build/fuzz/artifacts/). PROTOBUF_C_SRC=<protobuf-c source tree> compiles
# protobuf-c's runtime in, instrumented too, so UB inside it shows.
FUZZ_TARGETS := validate merge append project front
FUZZ_PB_SOURCES := $(filter src/common/% src/pb/%,$(CORE_C))
FUZZ_FRONT_SOURCES := $(filter src/db/% src/store/% src/front/%,$(CORE_C))
FUZZ_SECONDS ?= 60
FUZZ_SAN := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(FUZZ_SAN) -Wall -Wextra -Wshadow -Werror \
  -Isrc -Ibuild/fuzz
.PHONY: fuzz fuzz-run
fuzz: deps
	@dpkg -s clang libclang-rt-14-dev >/dev/null 2>&1 || { \
	  echo "installing Debian packages: clang libclang-rt-14-dev"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev; }
	mkdir -p build/fuzz
	$(call protoc,build/fuzz)
	@set -e; \
	if [ -n "$(PROTOBUF_C_SRC)" ]; then \
	  clang $(FUZZ_SAN) -fsanitize=fuzzer-no-link -w -I$(PROTOBUF_C_SRC) \
	    -c $(PROTOBUF_C_SRC)/protobuf-c/protobuf-c.c -o build/fuzz/protobuf-c.o; \
	  pbc="-I$(PROTOBUF_C_SRC)"; pbl=build/fuzz/protobuf-c.o; \
	else pbc="$$(pkg-config --cflags libprotobuf-c)"; pbl="$$(pkg-config --libs libprotobuf-c)"; fi; \
	for t in $(FUZZ_TARGETS); do \
	  extra=; [ $$t != front ] || \
	    extra="$(FUZZ_FRONT_SOURCES) $$(pkg-config --cflags --libs sqlite3 libnghttp2 openssl) -pthread"; \
	  echo "clang -fsanitize=fuzzer,address,undefined ... -o build/fuzz/fuzz_$$t"; \
	  clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $$pbc tests/fuzz/fuzz_$$t.c $(FUZZ_PB_SOURCES) \
	    $(call proto_c,build/fuzz) $$extra -o build/fuzz/fuzz_$$t $$pbl; \
	done

fuzz-run: fuzz
	rm -rf build/fuzz/corpus build/fuzz/artifacts
	mkdir -p build/fuzz/artifacts
	cp -r tests/fuzz/corpus build/fuzz/corpus
	@n=$(words $(FUZZ_TARGETS)); per=$$(( $(FUZZ_SECONDS) / n )); [ $$per -ge 1 ] || per=1; \
	fail=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  if ! build/fuzz/fuzz_$$t -max_total_time=$$per -print_final_stats=1 \
	      -artifact_prefix=build/fuzz/artifacts/$$t- build/fuzz/corpus/$$t \
	      >build/fuzz/$$t.log 2>&1; then \
	    fail=1; tail -40 build/fuzz/$$t.log; echo "fuzz_$$t: CRASH (build/fuzz/$$t.log)"; fi; \
	  echo "fuzz_$$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$$t.log) executions in $${per}s"; \
	done; exit $$fail

# Targets kept in files of their own (wheels, Feast's upstream tests).
include $(wildcard mk/*.mk)
