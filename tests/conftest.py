"""Shared fixtures: the univariate derivation, built once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def univariate():
    from symkl import derive

    return derive("univariate")


@pytest.fixture(scope="session")
def univariate_report(univariate):
    return univariate.verify()
