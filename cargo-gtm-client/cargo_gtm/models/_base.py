"""Shared base for Cargo domain models: camelCase wire names, tolerance for the unknown."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["CargoModel", "OpenStrEnum"]


class CargoModel(BaseModel):
    """Base class of every Cargo model.

    * Python attributes are snake_case; the wire names are camelCase (``runs_count`` ↔
      ``runsCount``); both are accepted on input.
    * Fields Cargo adds later are kept (``model_extra``), never an error: a new server
      field is not an outage.
    * ``to_wire()`` gives back the camelCase JSON form.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=False,
        protected_namespaces=(),
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON-compatible dict, as Cargo sends it."""
        return self.model_dump(mode="json", by_alias=True)


class OpenStrEnum(str, Enum):
    """A string enum that also accepts values it does not know.

    An unknown value becomes a pseudo-member whose ``is_known`` is ``False`` (its
    ``value`` is the raw string), so parsing never fails on a new status, while code
    that classifies statuses must handle it explicitly.

    >>> class Color(OpenStrEnum):
    ...     RED = "red"
    >>> Color("red").is_known, Color("teal").is_known, Color("teal").value
    (True, False, 'teal')
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value is one the client was written for."""
        return self._name_ in type(self).__members__

    def __str__(self) -> str:
        return str(self.value)
