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
    min_seconds: float = 0.2
    max_seconds: float = 0.6
    icon_url: str | None = None
    #: CARGO-DOCS 4.5: when the execution fails, the run continues to the next node (and can end ``success``)
    fallback_on_failure: bool = False
    usage_slug: str | None = None  # billing.credits slug when not integration.<slug>.action.<action>


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
    run_creation_rule: str = "always"  # plays: "once" marks records that already ran ``skipped`` (dedupe)

    @property
    def output_node(self) -> NodeSpec:
        """The terminal node (the last one a completing run executes), exported by default."""
        return self.nodes[-1]

    def node(self, slug: str) -> NodeSpec | None:
        """Look a node up by slug (the first one when several share it)."""
        return next((n for n in self.nodes if n.slug == slug), None)

    def has_slug(self, slug: str) -> bool:
        """Whether some node of the workflow has ``slug`` (slugs are not unique, CARGO-DOCS 1.6)."""
        return any(n.slug == slug for n in self.nodes)

    def unique_slugs(self) -> list[str]:
        """Node slugs in graph order, each once."""
        return list(dict.fromkeys(n.slug for n in self.nodes))


def _require(record: dict[str, Any], *keys: str) -> list[Any]:
    values = []
    for key in keys:
        v = record.get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            raise NodeFailure(f"Missing required input: {key}")
        values.append(v)
    return values


def _start(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    # the engine replaces this config by the run's input as sent (the "first node's resolved config")
    return dict(record), dict(record)


FILTER_ACTION = "filter"
FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "proton.me")


def is_filter(node: NodeSpec) -> bool:
    """A native ``filter`` node: the run continues only when it evaluates true (CARGO-DOCS 4.2)."""
    return node.kind == "native" and node.action_slug == FILTER_ACTION


def filter_passes(node: NodeSpec, record: dict[str, Any]) -> bool:
    """Evaluate a filter node on ``record`` (a filter whose input is unusable stops the run)."""
    try:
        _, data = node.compute(record, {})
    except NodeFailure:
        return False
    return bool(data.get("result"))


def _employees_at_least(threshold: int) -> Compute:
    def compute(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        v = record.get("employee_count")
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= threshold
        return {"columnSlug": "employee_count", "operator": "greaterThanOrEqual", "value": threshold}, {
            "result": ok}
    return compute


def _not_free_mail(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    domain = _clean_domain(record.get("domain"))
    return {"domain": domain, "blocked": list(FREE_MAIL_DOMAINS)}, {
        "result": bool(domain) and domain not in FREE_MAIL_DOMAINS}


def _normalize_domain(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (domain,) = _require(record, "domain")
    return {"domain": domain}, {"domain": _clean_domain(domain)}


def _clean_domain(value: Any) -> str:
    text = str(value or "").strip().lower().removeprefix("https://").removeprefix("http://")
    return text.removeprefix("www.").split("/")[0]


def _domain_parts(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    norm = str((ctx.get("variables") or {}).get("domain") or "")
    label, _, tld = norm.partition(".")
    return {"domain": norm}, {"domain": norm, "label": label, "tld": tld}


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


def _classify_agent(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (domain,) = _require(record, "domain")
    cfg = {"prompt": "Classify the company's market segment.", "domain": domain, "name": record.get("name")}
    return cfg, enrichment.classify_company(domain, record.get("name"))


def _classify_variables(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    # reads the agent's output, also slugged "classify" (runContext is keyed by slug: this node's output
    # replaces it); when the agent failed and fell back (fallbackOnFailure), there is none
    agent = ctx.get("classify") or {}
    label = agent.get("label")
    return {"label": "{{nodes.classify.label}}"}, {
        "segment": label or "unclassified", "classified_by": "agent" if label else "fallback"}


def _output(fields: list[str], *node_slugs: str) -> Compute:
    def compute(record: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {f: record.get(f) for f in fields}
        for slug in node_slugs:
            data.update(ctx.get(slug) or {})
        return {"fields": list(data)}, data

    return compute


def _start_node() -> NodeSpec:
    return NodeSpec("start", "Start", "native", "start", _start, min_seconds=0.1, max_seconds=0.3)


def _native(slug: str, name: str, action: str, compute: Compute) -> NodeSpec:
    return NodeSpec(slug, name, "native", action, compute, min_seconds=0.1, max_seconds=0.4)


def _enrich_company_node() -> NodeSpec:
    return NodeSpec(
        "enrich_company", "Enrich company", "connector", "enrichCompany", _enrich_company,
        integration_slug="clearbit", cost=2, min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/clearbit.svg",
    )


def build_specs() -> list[WorkflowSpec]:
    """Six of the seeded workflows (three plays, three tools); :func:`agent_play_spec` is the seventh (a play),
    seeded by default from its own uuid namespace (``CargoEmulator(agent_play=False)`` leaves it out)."""
    score_node = NodeSpec(
        "score", "Score with AI", "connector", "instructStructured", _score,
        integration_slug="openai", cost=1, min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/openai.svg",
    )
    email_node = NodeSpec(
        "find_email", "Find work email", "connector", "findEmail", _find_email,
        integration_slug="hunter", cost=3, min_seconds=1.0, max_seconds=5.0,
        icon_url="https://cdn.getcargo.io/integrations/hunter.svg",
    )
    contact_node = NodeSpec(
        "enrich_contact", "Enrich contact", "connector", "enrichPerson", _enrich_contact,
        integration_slug="apollo", cost=2, min_seconds=1.0, max_seconds=5.0,
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
        # A play whose filter stops small companies on purpose and whose dedupe skips records that already
        # ran (runCreationRule "once"); its exit node is slugged ``end`` (CARGO-DOCS 4.1, 4.2, 14.1).
        WorkflowSpec(
            key="qualify_inbound_companies", kind="play", name="Qualify inbound companies",
            description="Enrich inbound companies with 50+ employees, once per company.",
            model_slug="companies", run_creation_rule="once",
            nodes=[
                _start_node(),
                _native("filter", "Has 50+ employees", FILTER_ACTION, _employees_at_least(50)),
                _enrich_company_node(),
                NodeSpec("end", "End", "native", "end", _output(["domain", "name"], "enrich_company")),
            ],
        ),
        # A tool with repeated node slugs (two ``variables`` nodes, CARGO-DOCS 1.6) and a filter that stops
        # free-mail domains; no paid node.
        WorkflowSpec(
            key="normalize_domain_tool", kind="tool", name="Normalize domain",
            description="Normalize a company domain and split it; free-mail domains are filtered out.",
            form_fields=[
                {"name": "Domain", "slug": "domain", "kind": "string", "isRequired": True,
                 "placeholder": "https://www.acme.com/about"},
            ],
            nodes=[
                _start_node(),
                _native("variables", "Normalize", "variables", _normalize_domain),
                _native("variables", "Split", "variables", _domain_parts),
                _native("filter", "Not a free-mail domain", FILTER_ACTION, _not_free_mail),
                NodeSpec("output", "Output", "native", "end", _output([], "variables")),
            ],
            emoji="globe",
        ),
    ]


def agent_play_spec() -> WorkflowSpec:
    """The seeded play "Classify inbound companies" (default; ``CargoEmulator(agent_play=False)`` leaves it out)."""
    # A play whose ``agent`` node and ``variables`` node are both slugged ``classify`` (CARGO-DOCS 15.4: slugs
    # repeat across node kinds; the agent carries its ``agentUuid`` at top level and no actionSlug); the
    # agent has ``retry`` and ``fallbackOnFailure`` (4.5), so a run whose agent failed still ends success,
    # with segment "unclassified". Seeded last, so the other workflows keep their uuids.
    return WorkflowSpec(
        key="classify_inbound_companies", kind="play", name="Classify inbound companies",
        description="Classify each inbound company's market segment with an AI agent.",
        model_slug="companies",
        nodes=[
            _start_node(),
            NodeSpec("classify", "Classify with an agent", "agent", "agent", _classify_agent,
                     integration_slug="openai", cost=1, min_seconds=1.0, max_seconds=4.0,
                     fallback_on_failure=True, usage_slug="integration.openai.chat"),
            _native("classify", "Segment label", "variables", _classify_variables),
            NodeSpec("end", "End", "native", "end", _output(["domain", "name"], "classify")),
        ],
    )


def expected_outputs(spec: WorkflowSpec, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run every node of ``spec`` on ``record`` (no failures) and return ``{slug: data}``.

    Tests use this to compute expected run contexts and download rows.
    """
    ctx: dict[str, Any] = {}
    for node in spec.nodes:
        _, data = node.compute(record, ctx)
        ctx[node.slug] = data
        if is_filter(node) and not data.get("result"):
            break
    return ctx
