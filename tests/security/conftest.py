import pytest

from tests.conftest import BUNDLES
from tests.security.world import build_world


@pytest.fixture
def world(loom):
    return build_world(loom, BUNDLES)
