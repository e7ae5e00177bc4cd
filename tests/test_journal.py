"""The transaction-message journal, under MicroPython."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("journal_cases"))
def test_journal(name, tmp_path):
    run_case("journal_cases", name, tmp_path)
