"""Progress logging and the credit budget, as plain functions of a polling round's status snapshot.

Both live in the framework-free core now (:class:`cargo_gtm.running.ProgressLog`,
:class:`cargo_gtm.running.CreditBudget`), where the one step loop uses them for batches and single runs
alike; this module keeps their old import path.
"""

from cargo_gtm.running import CreditBudget, ProgressLog

__all__ = ["CreditBudget", "ProgressLog"]
