"""Integration fixtures: a realm (tenant + client + user) per test."""

import pytest

from tests.integration.realm import Realm


@pytest.fixture
def realm(server, factory, browser):
    """A tenant with a first-party confidential client and an active user."""
    return Realm(server, factory, browser)
