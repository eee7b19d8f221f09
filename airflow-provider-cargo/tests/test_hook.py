"""CargoHook: settings from the connection, the token kept out of reprs, logs and errors; test_connection."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from conftest import TOKEN, conn_uri


def test_settings_come_from_the_connection_and_never_show_the_token(cargo_conn, monkeypatch) -> None:
    from cargo_provider.hooks.cargo import CargoHook

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_DEFAULT", conn_uri(cargo_conn, workspace_uuid="ws-1", poll_interval=7))
    settings = CargoHook().settings
    assert settings.base_url == cargo_conn.base_url and settings.workspace_uuid == "ws-1"
    assert settings.poll_interval == 7.0 and settings.token == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in repr(CargoHook().get_conn())


def test_test_connection_reads_the_workspace(cargo_conn, caplog) -> None:
    from cargo_provider.hooks.cargo import CargoHook

    caplog.set_level(logging.DEBUG)
    ok, message = CargoHook().test_connection()
    assert ok, message
    assert "Connected to Cargo workspace 'Cargo Demo Workspace'" in message
    assert TOKEN not in caplog.text and TOKEN not in message


def test_test_connection_with_a_wrong_token_says_so_without_the_token(cargo_conn, monkeypatch) -> None:
    from cargo_provider.hooks.cargo import CargoHook

    wrong = "wrong-token-5e1d"
    monkeypatch.setenv("AIRFLOW_CONN_CARGO_DEFAULT", json.dumps(
        {"conn_type": "cargo", "password": wrong, "host": cargo_conn.base_url}))
    ok, message = CargoHook().test_connection()
    assert not ok
    assert message.startswith(f"Could not reach Cargo at {cargo_conn.base_url} with connection 'cargo_default': ")
    assert "401" in message and "Next step:" in message, message
    assert wrong not in message


def test_a_connection_without_token_names_the_fix(monkeypatch) -> None:
    from cargo_provider.hooks.cargo import CargoHook

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_NOTOKEN", json.dumps({"conn_type": "cargo", "host": "http://127.0.0.1:1"}))
    with pytest.raises(ValueError, match="has no Cargo API token. Next step: put the token in the connection's "
                                         "Password field"):
        CargoHook("cargo_notoken").settings  # noqa: B018


def test_a_bad_number_in_extra_names_the_field(monkeypatch) -> None:
    from cargo_provider.hooks.cargo import CargoHook

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_BAD", json.dumps(
        {"conn_type": "cargo", "password": "x", "extra": {"poll_interval": "often"}}))
    with pytest.raises(ValueError, match="'poll_interval' must be a number, not 'often'"):
        CargoHook("cargo_bad").settings  # noqa: B018


def test_triggers_read_the_connection_asynchronously(cargo_conn, monkeypatch) -> None:
    """aget_settings goes through BaseHook.aget_connection; the blocking get_connection is never called."""
    from cargo_provider.hooks.cargo import CargoHook

    def blocking(*_a, **_k):
        raise AssertionError("blocking get_connection called from the event loop")

    monkeypatch.setattr(CargoHook, "get_connection", classmethod(blocking))
    settings = asyncio.run(CargoHook.aget_settings("cargo_default"))
    assert settings.base_url == cargo_conn.base_url and settings.token == TOKEN
