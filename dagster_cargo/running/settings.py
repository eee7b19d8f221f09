"""``CargoResource`` settings checked when the resource is built, and optional ``dg.EnvVar`` fields read
when it is used.

* Values that can only cost credits or time (a ``poll_timeout`` of 0, a negative ``single_run_threshold``,
  a ``base_url`` ending in ``/v1``) are refused when the resource is built, with what to write instead:
  before a code location loads, let alone before a batch is created.
* An optional field given as ``dg.EnvVar("X")`` while ``X`` is unset cannot stay in Dagster's config (Dagster
  would fail every run on the unset variable), so it is taken out and remembered: the variable is read again
  each time the resource is used (:func:`deferred_value`), as Dagster reads an ``EnvVar`` at launch. Setting
  ``X`` after the resource was built takes effect; left unset, the field's default applies (logged for
  ``base_url``: the default is Cargo's production API).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any

import dagster as dg
from cargo_gtm import DEFAULT_BASE_URL, check_base_url
from cargo_gtm.errors import CargoConfigError
from dagster._config.field_utils import IntEnvVar

__all__ = ["OPTIONAL_ENV_FIELDS", "check_setting", "defer_unset_env_fields", "deferred_value", "env_var_name",
           "setting_label"]

logger = logging.getLogger("dagster_cargo")

#: Optional fields that an unset ``dg.EnvVar`` leaves to be read when the resource is used.
OPTIONAL_ENV_FIELDS = ("workspace_uuid", "base_url", "batch_url_template", "max_credits_per_batch")

_warned_default_url: set[str] = set()


def env_var_name(value: Any) -> str | None:
    """The variable's name when ``value`` is a ``dg.EnvVar`` (or an int one), else None."""
    return value.env_var_name if isinstance(value, (dg.EnvVar, IntEnvVar)) else None


def defer_unset_env_fields(data: MutableMapping[str, Any]) -> dict[str, str]:
    """Take out of ``data`` the optional fields given as a ``dg.EnvVar`` that is unset now; returns
    field name → variable name, to be read again when the resource is used."""
    deferred: dict[str, str] = {}
    for name in OPTIONAL_ENV_FIELDS:
        var = env_var_name(data.get(name))
        if var is not None and not os.environ.get(var):
            deferred[name] = var
            del data[name]
    return deferred


def deferred_value(name: str, var: str) -> Any:
    """The value of field ``name`` from variable ``var`` now (checked as at construction), or None when ``var``
    is still unset (the field's default applies)."""
    raw = os.environ.get(var)
    if not raw:
        if name == "base_url" and var not in _warned_default_url:
            _warned_default_url.add(var)
            logger.warning("CargoResource.base_url is dg.EnvVar(%r), which is not set: calls go to %s. Set %s "
                           "(e.g. to the emulator's URL) if that is not where they should go.", var,
                           DEFAULT_BASE_URL, var)
        return None
    if name == "max_credits_per_batch":
        try:
            return check_setting(name, float(raw))
        except ValueError:
            raise CargoConfigError(f"CargoResource.max_credits_per_batch is dg.EnvVar({var!r}), whose value "
                                   f"{raw!r} is not a number.", hint=f"set {var} to a number of credits, "
                                   "e.g. 50, or unset it for no budget.") from None
    return check_setting(name, raw)


def _positive(name: str, value: Any, what: str) -> None:
    if value is not None and value <= 0:
        raise CargoConfigError(f"CargoResource.{name} must be more than 0 seconds, not {value!r}: {what}.",
                               hint=f"remove {name} to keep the default, or give a positive number.")


def check_setting(name: str, value: Any) -> Any:
    """``value`` for field ``name`` if it can work, else a :class:`CargoConfigError` saying what to write.
    An ``EnvVar`` passes: it is checked once read."""
    if env_var_name(value) is not None:
        return value
    if name == "base_url":
        check_base_url(value)
    elif name == "poll_timeout":
        _positive(name, value, "a batch would be created, then cancelled at once (credits spent for nothing)")
    elif name == "single_run_threshold" and value < 0:
        raise CargoConfigError(f"CargoResource.single_run_threshold must be 0 (never single runs) or more, "
                               f"not {value!r}.", hint="use 0 to always run batches, or e.g. 1.")
    elif name == "max_credits_per_batch" and value is not None and value < 0:
        raise CargoConfigError(f"CargoResource.max_credits_per_batch must be 0 or more credits, not {value!r}.",
                               hint="remove it for no budget, or give the credits one batch may use.")
    return value


def setting_label(resource: Any, name: str) -> str | None:
    """Field ``name`` of ``resource`` as stable text for a key: ``env:<NAME>`` when it is given as a
    ``dg.EnvVar`` (set or not: never its value), else the value itself (None when unset)."""
    var = getattr(resource, "_deferred_env", {}).get(name) or env_var_name(getattr(resource, name))
    if var is not None:
        return f"env:{var}"
    value = getattr(resource, name)
    return None if value is None else str(value)
