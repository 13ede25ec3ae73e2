# feast-sqlreg: everything from a fresh Debian machine.
#   make demo   build, then run the main job on the embedded SQLite default
#   make test   build, start the database servers, run every test
#   make bench  native vs stock registry, side by side (benchmarks/)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Debian packages: compiler inputs, client libraries, and the servers tests use.
APT_PACKAGES := gcc pkg-config libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler \
                libpq-dev libmariadb-dev postgresql mariadb-server
# Python packages the tests and benchmarks need besides Feast (the stock
# registry's drivers, and Feast's gRPC extra for `feast serve_registry`).
TEST_PACKAGES := "feast[grpcio]" pytest pytest-xdist "psycopg[binary]" pymysql
SOURCES := $(wildcard src/*.c src/*.h src/proto/*.proto feast_sqlreg/*.py) \
           feast_sqlreg_hook.py feast_sqlreg.pth setup.py pyproject.toml

.PHONY: all deps install demo test ctest bench databases clean

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
	cd tests && ../$(VENV)/bin/pytest -p no:cacheprovider -n 2 -q .

# The C layers below Python (url, pb, store on SQLite) under AddressSanitizer
# (leaks included) and UndefinedBehaviorSanitizer, with no Python involved.
CORE_SOURCES := $(filter-out src/module.c src/registry.c,$(wildcard src/*.c))
CLIBS := sqlite3 libprotobuf-c libpq libmariadb
ctest: deps
	mkdir -p build/ctest
	protoc-c --proto_path=src/proto --c_out=build/ctest feast_subset.proto
	gcc -std=c11 -D_POSIX_C_SOURCE=200809L -DFEAST_SQLREG_HAVE_PG -DFEAST_SQLREG_HAVE_MYSQL \
	  -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	  -Wall -Wextra -Wshadow -Werror -Isrc -Ibuild/ctest $$(pkg-config --cflags $(CLIBS)) \
	  tests/c/test_core.c $(CORE_SOURCES) build/ctest/feast_subset.pb-c.c \
	  -o build/ctest/test_core $$(pkg-config --libs $(CLIBS)) -pthread
	build/ctest/test_core

bench: install databases
	$(PY) benchmarks/run.py

clean:
	rm -rf build dist *.egg-info .stamp-deps $(VENV)/.stamp-install
