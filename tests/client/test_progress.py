"""The terminal/notebook progress display."""

import io

from cargo_gtm import Batch, BatchProgress, CargoClient, ProgressBar, records_data

from ..conftest import TOKEN, manual_clock


def progress(status, executed, runs=10):
    b = Batch.model_validate({"uuid": "b", "workflowUuid": "w", "status": status, "runsCount": runs,
                              "executedRunsCount": executed, "failedRunsCount": 1, "creditsUsedCount": executed})
    return BatchProgress(batch=b, elapsed=1.0, polls=1)


def test_non_interactive_prints_only_on_status_or_decile_change():
    out = io.StringIO()
    bar = ProgressBar(stream=out, interactive=False)
    for p in [progress("running", 1), progress("running", 1), progress("running", 5), progress("success", 10)]:
        bar(p)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("b [") and "100% 10/10 runs, 1 failed" in lines[-1] and "success" in lines[-1]


def test_interactive_redraws_in_place():
    out = io.StringIO()
    bar = ProgressBar(stream=out, interactive=True, width=10)
    bar(progress("running", 5))
    bar(progress("success", 10))
    assert out.getvalue() == (
        "\rb [#####.....]  50% 5/10 runs, 1 failed, 5 provider credits, running, 1s"
        "\rb [##########] 100% 10/10 runs, 1 failed, 10 provider credits, success, 1s\n"
    )


def test_used_with_a_real_wait(emulator):
    out = io.StringIO()
    with CargoClient(TOKEN, base_url=emulator.base_url, clock=manual_clock(emulator)) as cargo:
        tool = cargo.find_tool("Enrich company")
        batch = cargo.create_batch(tool.workflow_uuid, records_data([{"domain": f"d{i}.com"} for i in range(5)]))
        cargo.wait_for_batch(batch.uuid, poll_interval=0.05, max_poll_interval=0.2,
                             on_progress=ProgressBar(stream=out, interactive=False))
    assert out.getvalue().splitlines()[-1].startswith(f"{batch.uuid} [")
    assert "5/5 runs" in out.getvalue().splitlines()[-1]


def test_downloaded_frames_are_typed_numbers_and_dates():
    from cargo_gtm import frame_from_bytes

    csv = b"_id,score,ratio,created_at,seen_at,note\nr1,10,0.5,2025-01-02,2025-01-02T03:04:05.000Z,2025-01-02 is a date\nr2,,1.5,,2025-02-03T00:00:00Z,x\n"
    frame = frame_from_bytes(csv, "csv")
    assert frame["score"].dtype.kind == "f" and frame["ratio"].dtype.kind == "f"  # NaN makes ints float
    assert str(frame["created_at"].dtype).startswith("datetime64") and frame["created_at"][0].day == 2
    assert frame["seen_at"][0].hour == 3 and str(frame["seen_at"].dt.tz) == "UTC"
    assert frame["note"][0] == "2025-01-02 is a date"  # text that merely starts with a date stays text
    json_frame = frame_from_bytes(b'[{"n": 1, "when": "2025-03-04T05:06:07Z"}]', "json")
    assert json_frame["n"].dtype.kind == "i" and json_frame["when"][0].minute == 6
