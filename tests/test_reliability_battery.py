"""The hostile-user battery (tests/reliability_battery.py) in make test: every case behaves as promised
(typed errors for bad input, correct results for unusual input), and docs/reliability.md lists exactly the
cases that ran, with the outcomes they have now."""

from pathlib import Path

import pytest

from tests.reliability_battery import markdown, run_all

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


@pytest.mark.slow
def test_every_bad_input_is_refused_typed_and_the_table_is_current(tmp_path):
    outcomes = run_all(tmp_path)
    wrong = [f"{o.case.group}: {o.case.what}: {o.result}" for o in outcomes if not o.passed]
    assert not wrong, "\n".join(wrong)
    assert len(outcomes) >= 150
    rows = [line for line in markdown(outcomes).splitlines() if line.startswith("| ") and not line.startswith("| input")]
    documented = [line for line in DOC.read_text().splitlines() if line.startswith("| ") and not line.startswith("| input")]
    strip = [row.split(" | ")[0] for row in rows]
    assert strip == [row.split(" | ")[0] for row in documented], \
        "docs/reliability.md is stale: python -m tests.reliability_battery --write docs/reliability.md"
