# Feast's own SQL registry tests against the installed package, stock and
# native side by side (scripts/feast_tests/run.py). Not part of `make test`.
#
#   make feast-tests FEAST_SRC=<Feast source tree at the installed version>
#
# Runs test_universal_registry.py (SQL cases: SQLite, PostgreSQL, MySQL),
# unit/infra/registry/test_sql_registry.py, and test_versioning.py pointed at
# a SQL registry on each backend, once with FEAST_SQLREG_DISABLE=1 (stock)
# and once through the hook (native), on the local servers instead of
# testcontainers (scripts/feast_tests/feast_sqlreg_upstream.py). Without
# FEAST_SRC the tests come from Feast's PyPI sdist when it carries them (so
# far it does not, and the target says so). Nothing of Feast's is kept here:
# the tests are copied into build/feast-tests/tree for the run. Results:
# build/feast-tests/summary.md; logs and JUnit XML beside it. Fails when
# native fails a test that stock passes.
#
# What Feast's test modules import beyond our TEST_PACKAGES: testcontainers
# (and the Keycloak and MinIO clients its conftest imports), grpcio-testing,
# Snowflake's connector (imported by the registry test module), pyspark
# (stream feature views default to Spark transformations), and
# pytest-lazy-fixtures: Feast pins pytest-lazy-fixture, which breaks on
# pytest 8+, so scripts/feast_tests/pytest_lazyfixture.py maps its name to
# the maintained fork.
FEAST_TEST_PACKAGES := testcontainers python-keycloak minio grpcio-testing \
  "snowflake-connector-python[pandas]>=3.7,<5" "pyspark>=4.0.0" pytest-lazy-fixtures
FEAST_SRC ?=

.PHONY: feast-tests feast-tests-deps
feast-tests-deps: $(VENV)/.stamp-feast-tests
$(VENV)/.stamp-feast-tests: $(VENV)/.stamp
	$(PIP) install -q $(FEAST_TEST_PACKAGES)
	@touch $@

feast-tests: install databases feast-tests-deps
	$(PY) scripts/feast_tests/run.py --out build/feast-tests $(if $(FEAST_SRC),--feast-src "$(FEAST_SRC)")
