"""A faithful local emulator of the Cargo REST API (``https://api.getcargo.io/v1``).

Standard library only; it deliberately shares no code with ``cargo_gtm``. See ``EMULATOR.md``.
"""

from __future__ import annotations

from .emulator import CargoEmulator
from .faults import FAULT_KINDS, FaultInjector, FaultProfile
from .variants import VARIANTS

__all__ = ["FAULT_KINDS", "VARIANTS", "CargoEmulator", "FaultInjector", "FaultProfile"]
