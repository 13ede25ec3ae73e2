"""``pytest_lazyfixture.lazy_fixture`` for Feast's upstream tests on pytest 8+.

Feast's tests import ``lazy_fixture`` from pytest-lazy-fixture, which pins
pytest < 8 and breaks on newer pytest. pytest-lazy-fixtures (note the s) is
its maintained successor and takes the same arguments; this module gives its
``lf`` the old name, so the tests run unmodified on the pytest our own suite
uses. Only on sys.path while ``make feast-tests`` runs.
"""

from pytest_lazy_fixtures import lf as lazy_fixture

__all__ = ["lazy_fixture"]
