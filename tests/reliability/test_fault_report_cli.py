"""``cargo-fault-report``: the table on stdout, exit status from the must-be-zero figures."""

import cargo_fault_suite as fault_suite
from cargo_fault_suite import cli


def test_fault_report_prints_the_table_and_exits_zero_when_all_zeros_hold(capsys):
    code = cli.main(["--materializations", "2", "--seed", "3", "--profile", "none", "--quiet",
                     "--earlier-batches", "0", "--no-crash-scenarios"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Materializations succeeded" in out and "Provider credits spent / expected" in out and "PASS" in out


def test_fault_report_exits_non_zero_when_a_figure_is_not_zero(monkeypatch, capsys):
    class Report:
        def render(self) -> str:
            return "table"

        def problems(self) -> list[str]:
            return ["1 duplicate batch(es)"]

    monkeypatch.setattr(fault_suite, "run_fault_suite", lambda config, progress=None: Report())
    assert cli.main(["--materializations", "1"]) == 1
    assert capsys.readouterr().out.strip() == "table"


def test_fault_report_rejects_an_unknown_profile(capsys):
    assert cli.main(["--materializations", "1", "--profile", "nope"]) == 2
    assert "unknown fault profile" in capsys.readouterr().err
