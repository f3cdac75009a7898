import pytest

from config.readonly import forget_read_only_state


@pytest.fixture(autouse=True)
def fresh_read_only_state():
    """Each process remembers the switch for two seconds; tests must not inherit it."""
    forget_read_only_state()
    yield
    forget_read_only_state()
