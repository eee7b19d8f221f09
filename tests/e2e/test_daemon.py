"""The ``dagster_daemon`` fixture works: ``dagster-daemon run`` on the example project, next to
the real webserver, reports healthy through GraphQL and evaluates a sensor started the way
the UI's toggle starts it (``startSensor``). The example's Cargo observation sensor, run by the
daemon against the emulator, completes a tick without error.

This module gets its own webserver and DAGSTER_HOME (module-scoped fixtures), so whatever the
daemon launches here cannot touch the materialization test's instance.
"""

from __future__ import annotations

import time

SENSOR = "cargo_observation_sensor"

SENSORS_QUERY = """
query Sensors($repositorySelector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repositorySelector) {
    __typename
    ... on Sensors { results { name sensorState { status } } }
    ... on PythonError { message }
  }
}
"""

REPOSITORY_QUERY = """
query Repository {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } } }
  }
}
"""

START_SENSOR = """
mutation StartSensor($sensorSelector: SensorSelector!) {
  startSensor(sensorSelector: $sensorSelector) {
    __typename
    ... on Sensor { name sensorState { status } }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message stack }
  }
}
"""

SENSOR_TICKS = """
query SensorTicks($sensorSelector: SensorSelector!) {
  sensorOrError(sensorSelector: $sensorSelector) {
    __typename
    ... on Sensor {
      sensorState {
        status
        ticks(limit: 5) { status skipReason runIds error { message stack } }
      }
    }
  }
}
"""


def _repository(server) -> dict[str, str]:
    data = server.graphql(REPOSITORY_QUERY)["repositoriesOrError"]
    nodes = [n for n in data["nodes"] if n["location"]["name"] == "example_project.definitions"]
    assert len(nodes) == 1, data
    return {"repositoryName": nodes[0]["name"], "repositoryLocationName": nodes[0]["location"]["name"]}


def test_daemon_runs_the_example_sensors(dagster_webserver, dagster_daemon):
    server = dagster_webserver
    repository = _repository(server)
    sensors = server.graphql(SENSORS_QUERY, repositorySelector=repository)["sensorsOrError"]
    assert sensors["__typename"] == "Sensors", sensors
    names = {s["name"] for s in sensors["results"]}
    assert {"score_new_icp_companies", SENSOR} <= names  # new sensors may appear; these must stay

    selector = {**repository, "sensorName": SENSOR}
    started = server.graphql(START_SENSOR, sensorSelector=selector)["startSensor"]
    assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started

    deadline = time.monotonic() + 120
    ticks: list[dict] = []
    while time.monotonic() < deadline:
        assert dagster_daemon.alive(), server.diagnostics()
        state = server.graphql(SENSOR_TICKS, sensorSelector=selector)["sensorOrError"]["sensorState"]
        ticks = [t for t in state["ticks"] if t["status"] != "STARTED"]
        if ticks:
            break
        time.sleep(1.0)
    assert ticks, f"the daemon did not tick {SENSOR} in time\n{server.diagnostics()}"
    tick = ticks[0]
    assert tick["status"] in ("SUCCESS", "SKIPPED"), (
        f"{SENSOR} tick failed: {tick['error']}\n{server.diagnostics()}")
