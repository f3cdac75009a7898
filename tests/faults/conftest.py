import pytest

FUZZ_COUNTS: dict = {"cases": 0, "operations": 0, "statuses": {}}


def pytest_terminal_summary(terminalreporter):
    if FUZZ_COUNTS["cases"]:
        terminalreporter.write_line(
            f"fuzz: {FUZZ_COUNTS['cases']} cases over {FUZZ_COUNTS['operations']} operations, "
            "no 5xx, every documented response conforms; statuses "
            + ", ".join(f"{code}: {n}" for code, n in sorted(FUZZ_COUNTS["statuses"].items()))
        )


@pytest.fixture
def fuzz_counts():
    return FUZZ_COUNTS
