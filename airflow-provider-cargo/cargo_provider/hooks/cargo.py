"""``CargoHook``: a Cargo API client built from an Airflow connection of type ``cargo``.

The connection holds the API token in its *password* field (Airflow masks it in the UI, in logs and in
rendered templates), the API host in *host* (empty: ``https://api.getcargo.io``) and the workspace, polling
and timeout settings in its *extra* fields, which the provider declares in ``get_provider_info()``
(``conn-fields``), so the form needs no Python import. Nothing here logs the token or returns it.

Triggers read the connection with :meth:`CargoHook.aget_settings` (``BaseHook.aget_connection``), never
with the blocking ``get_connection``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from cargo_gtm import CargoClient

__all__ = ["CargoHook", "CargoSettings"]

DEFAULT_HOST = "https://api.getcargo.io"


def _number(extra: dict[str, Any], key: str, default: float | None) -> float | None:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"The Cargo connection's extra field {key!r} must be a number, not {value!r}. "
                         "Next step: fix it in Admin → Connections (or the AIRFLOW_CONN_… variable).") from None


@dataclass(frozen=True)
class CargoSettings:
    """What a Cargo connection says, without Airflow objects (picklable, safe to pass to a thread).

    ``repr`` never shows the token.
    """

    conn_id: str
    token: str
    base_url: str = DEFAULT_HOST
    workspace_uuid: str | None = None
    request_timeout: float = 60.0
    poll_interval: float = 5.0
    max_poll_interval: float = 30.0
    batch_url_template: str | None = None
    allow_insecure_http: bool = False

    def __repr__(self) -> str:
        return (f"CargoSettings(conn_id={self.conn_id!r}, base_url={self.base_url!r}, "
                f"workspace_uuid={self.workspace_uuid!r}, token=***)")

    @classmethod
    def from_connection(cls, conn: Any) -> CargoSettings:
        extra = dict(conn.extra_dejson or {})
        token = conn.password or extra.get("api_token") or ""
        if not token:
            raise ValueError(
                f"The Airflow connection {conn.conn_id!r} has no Cargo API token. Next step: put the token in "
                "the connection's Password field (Admin → Connections, or AIRFLOW_CONN_"
                f"{str(conn.conn_id).upper()}='cargo://:<token>@'), never in the DAG file.")
        return cls(
            conn_id=conn.conn_id,
            token=token,
            base_url=_base_url(conn),
            workspace_uuid=extra.get("workspace_uuid") or None,
            request_timeout=_number(extra, "request_timeout", 60.0) or 60.0,
            poll_interval=_number(extra, "poll_interval", 5.0) or 5.0,
            max_poll_interval=_number(extra, "max_poll_interval", 30.0) or 30.0,
            batch_url_template=extra.get("batch_url_template") or None,
            allow_insecure_http=str(extra.get("allow_insecure_http", "")).lower() in ("1", "true", "yes"),
        )

    def client(self, clock: Any = None) -> CargoClient:
        """A :class:`cargo_gtm.CargoClient` for these settings (close it when done)."""
        from cargo_gtm import CargoClient

        return CargoClient(self.token, workspace_uuid=self.workspace_uuid, base_url=self.base_url,
                           timeout=self.request_timeout, allow_insecure_http=self.allow_insecure_http,
                           clock=clock if clock is not None else CargoHook.clock_factory(self.base_url))

    def batch_url(self, batch_uuid: str, workflow_uuid: str | None = None) -> str | None:
        """A link to the batch in Cargo's app, from ``batch_url_template`` (``None`` without one)."""
        if not self.batch_url_template:
            return None
        return self.batch_url_template.format(batch_uuid=batch_uuid, workflow_uuid=workflow_uuid or "",
                                              workspace_uuid=self.workspace_uuid or "")


def _base_url(conn: Any) -> str:
    """The API host of the connection (``https://`` when no scheme is given); Cargo's own when empty."""
    host = (conn.host or "").strip()
    if host and "://" not in host:
        host = f"https://{host}"
    if host and conn.port:
        host = f"{host}:{conn.port}"
    return host or DEFAULT_HOST


def _no_clock(base_url: str) -> Any:
    return None


class CargoHook(BaseHook):
    """Interact with Cargo (getcargo.ai) through its REST API.

    :param cargo_conn_id: an Airflow connection of type ``cargo`` (default ``cargo_default``).

    ``get_conn()`` returns a :class:`cargo_gtm.CargoClient` (cached on the hook; :meth:`close` closes it).
    """

    conn_name_attr = "cargo_conn_id"
    default_conn_name = "cargo_default"
    conn_type = "cargo"
    hook_name = "Cargo"

    #: ``clock_factory(base_url)`` gives the clock every client waits on (``None``: the system clock).
    #: Tests set it to a manual clock that moves the emulator's time instead of sleeping.
    clock_factory: Callable[[str], Any] = staticmethod(_no_clock)

    def __init__(self, cargo_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cargo_conn_id = cargo_conn_id
        self._settings: CargoSettings | None = None
        self._client: CargoClient | None = None

    # -- settings ----------------------------------------------------------------------------
    @property
    def settings(self) -> CargoSettings:
        if self._settings is None:
            self._settings = CargoSettings.from_connection(self.get_connection(self.cargo_conn_id))
        return self._settings

    @classmethod
    async def aget_settings(cls, conn_id: str) -> CargoSettings:
        """The connection's settings, read without blocking the event loop (for triggers)."""
        conn = await cls.aget_connection(conn_id)
        return CargoSettings.from_connection(conn)

    # -- client ------------------------------------------------------------------------------
    def get_conn(self) -> CargoClient:
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> tuple[bool, str]:
        """Check the token and the host: reads the current user and workspace (spends nothing)."""
        try:
            settings = self.settings
        except ValueError as exc:
            return False, str(exc)
        client = settings.client()
        try:
            user = client.get_current_user()
            workspace = client.get_current_workspace()
        except Exception as exc:  # the error text is the client's: it never contains the token
            return False, (f"Could not reach Cargo at {settings.base_url} with connection {self.cargo_conn_id!r}: "
                           f"{exc}")
        finally:
            client.close()
        who = getattr(user, "email", None) or getattr(user, "uuid", "?")
        return True, f"Connected to Cargo workspace {getattr(workspace, 'name', '?')!r} as {who}."
