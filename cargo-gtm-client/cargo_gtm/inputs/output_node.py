"""Check ``output_node_slug`` against the workflow's deployed release before a batch is created.

A slug no node has, or one several nodes share, makes the download fail only after the batch has run and
been charged. Node slugs are not unique in Cargo: a play may carry an ``agent`` and a ``variables`` node
both slugged ``classify`` (CARGO-DOCS 15.4), and which one Cargo would export is not documented. Nodes may
also carry a ``fallbackChildUuid`` and, for ``tool``/``agent`` nodes, a top-level ``toolUuid``/``agentUuid``
instead of an ``actionSlug``: they are nodes like any other here, named by what they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import CargoInputError

__all__ = ["check_output_node"]


def _describe(node: Any) -> str:
    describe = getattr(node, "describe", None)
    return describe() if callable(describe) else f"{getattr(node, 'kind', 'node')} {node.slug!r}"


def check_output_node(nodes: Sequence[Any], slug: str, *, release_uuid: str | None, what: str) -> None:
    """Raise a :class:`CargoInputError` (nothing created, 0 credits spent) when ``slug`` names no node, or
    several, of the deployed release whose ``nodes`` are given."""
    matches = [n for n in nodes if n.slug == slug]
    if len(matches) == 1:
        return
    release = f"release {release_uuid}" if release_uuid else "the deployed release"
    if not matches:
        available = ", ".join(repr(s) for s in sorted({n.slug for n in nodes})) or "none"
        raise CargoInputError(
            f"Output node {slug!r} is not a node of {what} ({release}): the download would fail after the batch "
            f"had run and been charged. Nothing was created: 0 credits spent. Node slugs: {available}.",
            hint="pass one of them as output_node_slug, or none for Cargo's default (the last executed node).")
    kinds = ", ".join(_describe(n) for n in matches)
    raise CargoInputError(
        f"Output node slug {slug!r} names {len(matches)} nodes of {what} ({release}): {kinds}. Slugs can repeat "
        "across node kinds in Cargo, and which node Cargo would export is not documented. Nothing was created: "
        "0 credits spent.", hint="give the node you want a unique slug in Cargo and redeploy, or pass no "
        "output_node_slug for Cargo's default (the last executed node).")
