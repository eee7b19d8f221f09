"""Definitions of the seeded workflows: slugged node chains, per-node credit cost and compute function.

Each node's ``compute(record, context)`` returns ``(computed_config, output_data)`` and is a pure function of
the input record (see :mod:`.enrichment`). A node raises :class:`NodeFailure` when its input is unusable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import enrichment

Compute = Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


class NodeFailure(Exception):
    """A node could not execute for this record (message becomes the execution/run ``errorMessage``)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of a linear workflow."""

    slug: str
    name: str
    kind: str  # "native" | "connector"
    action_slug: str
    compute: Compute
    integration_slug: str | None = None
    cost: int = 0
    usage_slug: str | None = None
    min_seconds: float = 0.2
    max_seconds: float = 0.6
    icon_url: str | None = None


@dataclass(frozen=True)
class WorkflowSpec:
    """A play or tool workflow definition."""

    key: str
    kind: str  # "play" | "tool"
    name: str
    description: str
    nodes: list[NodeSpec]
    model_slug: str | None = None
    form_fields: list[dict[str, Any]] = field(default_factory=list)
    emoji: str = "zap"

    @property
    def output_node(self) -> NodeSpec:
        """The terminal node whose data is exported by default."""
        return self.nodes[-1]

    def node(self, slug: str) -> NodeSpec | None:
        """Look a node up by slug."""
        return next((n for n in self.nodes if n.slug == slug), None)


def _require(record: dict[str, Any], *keys: str) -> list[Any]:
    values = []
    for key in keys:
        v = record.get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            raise NodeFailure(f"Missing required input: {key}")
        values.append(v)
    return values


def _start(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return {}, dict(record)


def _enrich_company(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (domain,) = _require(record, "domain")
    return {"domain": domain}, enrichment.enrich_company(domain)


def _score(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (domain,) = _require(record, "domain")
    return {"domain": domain, "model": "gpt-4o-mini"}, enrichment.score_company(domain)


def _find_email(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    first, last, domain = _require(record, "first_name", "last_name", "domain")
    cfg = {"firstName": first, "lastName": last, "domain": domain}
    return cfg, enrichment.find_work_email(first, last, domain)


def _enrich_contact(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    first, last, domain = _require(record, "first_name", "last_name", "company_domain")
    cfg = {"firstName": first, "lastName": last, "companyDomain": domain, "title": record.get("title")}
    return cfg, enrichment.enrich_contact(first, last, domain, record.get("title"))


def _output(fields: list[str], *node_slugs: str) -> Compute:
    def compute(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {f: record.get(f) for f in fields}
        for slug in node_slugs:
            data.update(ctx.get(slug) or {})
        return {"fields": list(data)}, data

    return compute


def _start_node() -> NodeSpec:
    return NodeSpec("start", "Start", "native", "start", _start, min_seconds=0.1, max_seconds=0.3)


def _enrich_company_node() -> NodeSpec:
    return NodeSpec(
        "enrich_company", "Enrich company", "connector", "enrichCompany", _enrich_company,
        integration_slug="clearbit", cost=2, usage_slug="enrichment", min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/clearbit.svg",
    )


def build_specs() -> list[WorkflowSpec]:
    """The four seeded workflows (two plays, two tools)."""
    score_node = NodeSpec(
        "score", "Score with AI", "connector", "instructStructured", _score,
        integration_slug="openai", cost=1, usage_slug="ai_message", min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/openai.svg",
    )
    email_node = NodeSpec(
        "find_email", "Find work email", "connector", "findEmail", _find_email,
        integration_slug="hunter", cost=3, usage_slug="enrichment", min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/hunter.svg",
    )
    contact_node = NodeSpec(
        "enrich_contact", "Enrich contact", "connector", "enrichPerson", _enrich_contact,
        integration_slug="apollo", cost=2, usage_slug="enrichment", min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/apollo.svg",
    )
    return [
        WorkflowSpec(
            key="score_inbound_companies", kind="play", name="Score inbound companies",
            description="Enrich every inbound company and score it against the ICP.",
            model_slug="companies",
            nodes=[
                _start_node(), _enrich_company_node(), score_node,
                NodeSpec("output", "Output", "native", "end",
                         _output(["domain", "name"], "enrich_company", "score")),
            ],
        ),
        WorkflowSpec(
            key="find_decision_makers", kind="play", name="Find decision makers",
            description="Flag contacts who are likely decision makers.",
            model_slug="contacts",
            nodes=[
                _start_node(), contact_node,
                NodeSpec("output", "Output", "native", "end",
                         _output(["email", "first_name", "last_name", "company_domain", "title"],
                                 "enrich_contact")),
            ],
        ),
        WorkflowSpec(
            key="enrich_company_tool", kind="tool", name="Enrich company",
            description="Firmographic enrichment from a company domain.",
            form_fields=[
                {"name": "Domain", "slug": "domain", "kind": "string", "isRequired": True,
                 "placeholder": "acme.com"},
                {"name": "Company name", "slug": "company_name", "kind": "string", "isRequired": False},
            ],
            nodes=[
                _start_node(), _enrich_company_node(),
                NodeSpec("output", "Output", "native", "end",
                         _output(["domain", "company_name"], "enrich_company")),
            ],
            emoji="office",
        ),
        WorkflowSpec(
            key="find_work_email_tool", kind="tool", name="Find work email",
            description="Guess and verify a person's work email.",
            form_fields=[
                {"name": "First name", "slug": "first_name", "kind": "string", "isRequired": True},
                {"name": "Last name", "slug": "last_name", "kind": "string", "isRequired": True},
                {"name": "Domain", "slug": "domain", "kind": "string", "isRequired": True},
            ],
            nodes=[
                _start_node(), email_node,
                NodeSpec("output", "Output", "native", "end",
                         _output(["first_name", "last_name", "domain"], "find_email")),
            ],
            emoji="email",
        ),
    ]


def expected_outputs(spec: WorkflowSpec, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run every node of ``spec`` on ``record`` (no failures) and return ``{slug: data}``.

    Tests use this to compute expected run contexts and download rows.
    """
    ctx: dict[str, Any] = {}
    for node in spec.nodes:
        _, data = node.compute(record, ctx)
        ctx[node.slug] = data
    return ctx
