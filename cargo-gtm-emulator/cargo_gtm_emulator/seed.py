"""Deterministic demo workspace: models with synthetic records, segments, plays, tools, releases.

Everything is derived from ``seed`` via seeded PRNGs, so two emulators with the same seed hold the same
uuids and records.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .util import IdFactory, iso
from .workflows import WorkflowSpec, agent_play_spec, build_specs

if TYPE_CHECKING:
    from .store import Store

_PREFIXES = ["Acme", "Nova", "Blue", "Bright", "Quantum", "Silver", "Apex", "Lumen", "Vertex", "Orbit",
             "Pioneer", "Cedar", "Harbor", "Summit", "Atlas", "Beacon", "Crimson", "Delta", "Echo", "Falcon",
             "Granite", "Helix", "Iris", "Juniper", "Kepler", "Lattice", "Maple", "Nimbus", "Onyx", "Prism"]
_SUFFIXES = ["Labs", "Systems", "Analytics", "Health", "Logistics", "Software", "Capital", "Energy",
             "Retail", "Media", "Robotics", "Networks", "Foods", "Bio", "Cloud", "Works"]
_TLDS = ["com", "com", "com", "io", "ai", "co", "fr", "de", "co.uk", "es"]
_INDUSTRIES = ["Software", "Financial Services", "Healthcare", "Retail", "Manufacturing", "Media",
               "Education", "Logistics", "Energy", "Real Estate"]
_COUNTRIES = ["US", "US", "US", "GB", "FR", "DE", "ES", "IT", "NL", "SE", "CA", "AU", "BR", "IN"]
EU_COUNTRIES = ["FR", "DE", "ES", "IT", "NL", "SE", "BE", "PT", "IE", "AT", "DK", "FI", "PL"]
_FIRST = ["Alice", "Bob", "Chloé", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kenji",
          "Lea", "Marco", "Nina", "Omar", "Paula", "Quentin", "Rosa", "Sven", "Tara", "Ugo", "Vera",
          "Wei", "Xavier", "Yara", "Zoe"]
_LAST = ["Martin", "Smith", "Dubois", "Müller", "Garcia", "Rossi", "Jansen", "Nilsson", "Brown", "Lee",
         "Kowalski", "Silva", "Patel", "Tanaka", "Novak", "O'Brien", "Schmidt", "Moreau", "Lopez", "Khan"]
_TITLES = ["CEO", "CTO", "VP Sales", "Head of Growth", "Marketing Manager", "Software Engineer",
           "Sales Director", "Account Executive", "Data Analyst", "Chief Revenue Officer",
           "Product Manager", "Senior Engineer", "Operations Lead", "Finance Director"]

COMPANY_COLUMNS = [
    ("_id", "string", "ID"), ("_title", "string", "Title"), ("domain", "string", "Domain"),
    ("name", "string", "Name"), ("industry", "string", "Industry"),
    ("employee_count", "number", "Employee count"), ("country", "string", "Country"),
    ("founded_year", "number", "Founded year"), ("created_at", "date", "Created at"),
]
CONTACT_COLUMNS = [
    ("_id", "string", "ID"), ("_title", "string", "Title"), ("first_name", "string", "First name"),
    ("last_name", "string", "Last name"), ("email", "string", "Email"), ("title", "string", "Job title"),
    ("company_domain", "string", "Company domain"), ("country", "string", "Country"),
    ("created_at", "date", "Created at"),
]

#: ``trackingColumnSlugs`` of play segments: edits to these columns make a record ``updated`` (CARGO-DOCS 8.1).
PLAY_TRACKING = {"companies": ["name", "domain", "industry", "employee_count", "country"],
                 "contacts": ["first_name", "last_name", "email", "title", "company_domain", "country"]}

#: Names of the seeded plays and tools (the default workspace, before ``extra_workflows``; the agent play is
#: the last play, absent with ``agent_play=False``), for tests that count or select them.
SEEDED_PLAYS: tuple[str, ...] = (*(s.name for s in build_specs() if s.kind == "play"), agent_play_spec().name)
SEEDED_TOOLS: tuple[str, ...] = tuple(s.name for s in build_specs() if s.kind == "tool")

N_COMPANIES = 300
N_CONTACTS = 500


def _ascii(s: str) -> str:
    table = str.maketrans({"é": "e", "ü": "u", "'": "", " ": ""})
    return s.translate(table).lower()


def generate_companies(seed: int, base_ts: float) -> list[dict[str, Any]]:
    """Synthetic company records (deterministic for ``seed``)."""
    rng = random.Random(f"{seed}:companies")
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    for i in range(N_COMPANIES):
        while True:
            name = f"{rng.choice(_PREFIXES)} {rng.choice(_SUFFIXES)}"
            domain = f"{_ascii(name)}.{rng.choice(_TLDS)}"
            if domain not in used:
                used.add(domain)
                break
        employees = int(min(50000, max(2, rng.lognormvariate(4.5, 1.6))))
        created = base_ts - rng.randint(1, 365) * 86400 - rng.randint(0, 86399)
        out.append({
            "_id": f"cmp_{i + 1:04d}", "_title": name, "domain": domain, "name": name,
            "industry": rng.choice(_INDUSTRIES), "employee_count": employees,
            "country": rng.choice(_COUNTRIES), "founded_year": rng.randint(1950, 2023),
            "created_at": iso(created),
        })
    return out


def generate_contacts(seed: int, base_ts: float, companies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Synthetic contact records linked to ``companies`` by ``company_domain``."""
    rng = random.Random(f"{seed}:contacts")
    out: list[dict[str, Any]] = []
    for i in range(N_CONTACTS):
        company = rng.choice(companies)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        created = base_ts - rng.randint(1, 365) * 86400 - rng.randint(0, 86399)
        out.append({
            "_id": f"ctc_{i + 1:04d}", "_title": f"{first} {last}", "first_name": first, "last_name": last,
            "email": f"{_ascii(first)}.{_ascii(last)}{i + 1}@{company['domain']}",
            "title": rng.choice(_TITLES), "company_domain": company["domain"],
            "country": company["country"] if rng.random() < 0.8 else rng.choice(_COUNTRIES),
            "created_at": iso(created),
        })
    return out


def _node_wire(spec: WorkflowSpec, idx: int, uuids: list[str], connectors: dict[str, str],
               agent_uuid: str | None = None) -> dict[str, Any]:
    """A release node as live releases return it (CARGO-DOCS 15.4): ``tool``/``agent`` nodes carry their
    ``toolUuid``/``agentUuid`` at top level and no ``actionSlug``; a node with ``fallbackOnFailure`` names
    the node execution continues with (``fallbackChildUuid``, the next node here)."""
    node = spec.nodes[idx]
    nxt = [uuids[idx + 1]] if idx + 1 < len(uuids) else []
    wire: dict[str, Any] = {
        "uuid": uuids[idx], "slug": node.slug, "name": node.name, "config": {}, "childrenUuids": nxt,
        "fallbackOnFailure": node.fallback_on_failure, "position": {"x": 0, "y": 120 * idx}, "kind": node.kind,
    }
    if node.kind == "agent":
        wire.update({"agentUuid": agent_uuid, "waitUntilFinished": True})
    else:
        wire["actionSlug"] = node.action_slug
    if node.fallback_on_failure and nxt:
        wire["fallbackChildUuid"] = nxt[0]
    if node.kind == "connector":
        wire["integrationSlug"] = node.integration_slug
        wire["connectorUuid"] = connectors[node.integration_slug or ""]
    if node.cost > 0:  # provider nodes retry transient failures (CARGO-DOCS 4.5)
        wire["retry"] = {"maximumAttempts": 3, "initialInterval": 1000, "backoffCoefficient": 2}
    return wire


def _workflow_tree(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest a linear node list into WorkflowNode trees (each node's ``nodes`` are its children)."""
    tree: list[dict[str, Any]] = []
    for node in reversed(nodes):
        wn: dict[str, Any] = {"uuid": node["uuid"], "slug": node["slug"], "name": node["name"],
                              "isArchived": False, "nodes": tree, "kind": node["kind"]}
        for key in ("actionSlug", "agentUuid", "toolUuid"):
            if key in node:
                wn[key] = node[key]
        if node["kind"] == "connector":
            wn["integrationSlug"] = node["integrationSlug"]
            wn["connectorUuid"] = node["connectorUuid"]
        tree = [wn]
    return tree


def _add_workflow(store: Store, ids: IdFactory, spec: WorkflowSpec, *, created: float,
                  connectors: dict[str, str], play_filter: dict[str, Any] | None, scheduled: bool,
                  change_ids: IdFactory | None = None) -> str:
    """Add one play or tool of ``spec``: its workflow, a deployed release with slugged nodes, the play's
    own segment (initial snapshot taken) or the tool. Returns the workflow uuid.

    uuids are drawn from ``ids`` in a fixed order (workflow, release, play/tool, nodes, segment), so the
    seeded workspace is the same for the same seed. ``change_ids``: where the play segment's Changes take
    their uuids from (default: the store's runtime sequence).
    """
    ws, user_uuid = store.workspace_uuid, store.user_uuid
    wf_uuid, rel_uuid, entity_uuid = ids.uuid(), ids.uuid(), ids.uuid()
    node_uuids = [ids.uuid() for _ in spec.nodes]
    agents = {i: ids.uuid() for i, n in enumerate(spec.nodes) if n.kind == "agent"}  # none: no uuid drawn
    nodes = [_node_wire(spec, i, node_uuids, connectors, agents.get(i)) for i in range(len(spec.nodes))]
    form_fields = spec.form_fields if spec.kind == "tool" else None
    release = {
        "uuid": rel_uuid, "parentUuid": None, "workspaceUuid": ws, "userUuid": user_uuid,
        "workflowUuid": wf_uuid, "description": f"Initial release of {spec.name}", "version": "1",
        "status": "deployed", "templateSlug": None, "nodes": nodes, "formFields": form_fields,
        "testRecords": [], "deployedAt": iso(created + 60), "createdAt": iso(created),
        "updatedAt": iso(created + 60), "deletedAt": None,
    }
    store.releases[rel_uuid] = release
    store.workflows[wf_uuid] = {
        "uuid": wf_uuid, "workspaceUuid": ws, "nodes": _workflow_tree(nodes), "createdAt": iso(created),
        "updatedAt": iso(created + 60), "deletedAt": None,
        "playUuid": entity_uuid if spec.kind == "play" else None,
        "toolUuid": entity_uuid if spec.kind == "tool" else None, "folderUuid": None, "template": None,
    }
    store.specs[wf_uuid] = spec
    store.deployed_release[wf_uuid] = rel_uuid
    if spec.kind == "play":
        model = store.model_by_slug(spec.model_slug or "")
        seg_uuid = ids.uuid()
        if play_filter is None:
            raise ValueError(f"play {spec.name!r} needs a segment filter")
        store.create_segment(seg_uuid, model["uuid"], spec.name, play_filter, created=created, from_play=True,
                             tracking=PLAY_TRACKING[spec.model_slug or ""], change_ids=change_ids)
        store.plays[entity_uuid] = {
            "uuid": entity_uuid, "workspaceUuid": ws, "workflowUuid": wf_uuid, "userUuid": user_uuid,
            "modelUuid": model["uuid"], "segmentUuid": seg_uuid, "changeKinds": ["added", "updated"],
            "runCreationRule": spec.run_creation_rule, "name": spec.name, "description": spec.description,
            "schedule": ({"type": "cron", "cron": "0 * * * *",
                          "temporalScheduleWorkflowId": f"play-schedule-{entity_uuid}"}
                         if scheduled else None),
            "isEnabled": scheduled, "healthThreshold": 50, "healthAlertActions": [], "folderUuid": None,
            "createdAt": iso(created), "updatedAt": iso(created + 60), "deletedAt": None,
        }
        model["playsCount"] += 1
    else:
        store.tools[entity_uuid] = {
            "uuid": entity_uuid, "icon": {"kind": "emoji", "emojiSlug": spec.emoji}, "workspaceUuid": ws,
            "workflowUuid": wf_uuid, "userUuid": user_uuid, "name": spec.name, "folderUuid": None,
            "creditsCost": {"kind": "sum"}, "description": spec.description, "isReadOnly": False,
            "triggers": [], "publicForm": None, "createdAt": iso(created), "updatedAt": iso(created + 60),
            "deletedAt": None,
        }
    return wf_uuid


def seed_workspace(store: Store) -> None:
    """Populate ``store`` with the demo workspace."""
    ids = IdFactory(store.seed, "seed")
    now = store.clock.now()
    t0 = now - 30 * 86400  # workspace creation
    ts = iso(t0)
    ws = ids.uuid()
    user_uuid, role_uuid = ids.uuid(), ids.uuid()
    store.workspace_uuid = ws
    store.user_uuid = user_uuid
    store.workspace = {
        "uuid": ws, "name": "Cargo Demo Workspace", "allowedEmailDomains": ["example.com"], "syncs": [],
        "temporalNamespace": "cargo-emulator", "temporalTaskQueuePrefix": None,
        "maxConcurrentRuns": store.max_concurrent_runs, "openAiVectorStoreId": None, "createdAt": ts,
        "updatedAt": ts, "logoUrl": None, "metadata": None, "chromeExtensionMasterAgentUuid": None,
        "chromeExtensionAvailableAgentUuids": None, "defaultRoleUuid": role_uuid,
        "allowedLoginProviders": None, "ssoIdentifier": None, "quotaBuckets": {},
    }
    store.role = {"uuid": role_uuid, "workspaceUuid": ws, "slug": "admin",
                  "permissions": [{"effect": "allow", "resources": None, "actions": ["orchestration:*", "segmentation:*", "storage:*", "billing:*", "workspaceManagement:*"]}],
                  "createdAt": ts}
    store.user = {"uuid": user_uuid, "email": "demo@example.com", "firstName": "Demo", "lastName": "User",
                  "picture": None, "lastSignInAt": iso(now - 3600), "createdAt": ts, "updatedAt": ts,
                  "webExtensionData": None}

    dataset_uuid = ids.uuid()
    store.datasets[dataset_uuid] = {"uuid": dataset_uuid, "workspaceUuid": ws, "slug": "demo",
                                    "createdAt": ts, "updatedAt": ts, "deletedAt": None, "kind": "native"}
    connectors: dict[str, str] = {}
    for integ in ("clearbit", "openai", "hunter", "apollo"):
        cu = ids.uuid()
        connectors[integ] = cu
        store.connectors[cu] = {"uuid": cu, "integrationSlug": integ, "slug": integ, "name": integ.title()}

    companies = generate_companies(store.seed, now)
    contacts = generate_contacts(store.seed, now, companies)
    for slug, name, columns, records in (("companies", "Companies", COMPANY_COLUMNS, companies),
                                         ("contacts", "Contacts", CONTACT_COLUMNS, contacts)):
        mu = ids.uuid()
        store.models[mu] = {
            "uuid": mu, "workspaceUuid": ws, "slug": slug, "name": name,
            "description": f"Demo {slug} model", "datasetUuid": dataset_uuid, "extractorSlug": "native",
            "position": {"x": 0, "y": 0}, "config": {}, "schedule": None, "meta": None,
            "columns": [{"slug": c, "type": t, "label": lbl, "kind": "original", "originalSlug": c}
                        for c, t, lbl in columns],
            "additionalColumns": [], "idColumnSlug": "_id", "unification": None, "titleColumnSlug": "_title",
            "timeColumnSlug": "created_at", "folderUuid": None, "playsCount": 0, "segmentsCount": 0,
            "isPaused": False, "lastEmittedAt": iso(now - 600), "createdAt": ts, "updatedAt": ts,
            "deletedAt": None,
            "lastRun": {"uuid": ids.uuid(), "status": "success", "errorMessage": None,
                        "createdAt": iso(now - 700), "finishedAt": iso(now - 600)},
            "kind": "native",
        }
        store.records[mu] = {r["_id"]: r for r in records}

    companies_uuid = store.model_by_slug("companies")["uuid"]
    contacts_uuid = store.model_by_slug("contacts")["uuid"]
    store.create_segment(ids.uuid(), companies_uuid, "ICP companies", {
        "conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
            {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 200}]}]},
        created=t0 + 3600)
    store.create_segment(ids.uuid(), contacts_uuid, "EU contacts", {
        "conjonction": "and", "groups": [{"conjonction": "or", "conditions": [
            {"kind": "string", "columnSlug": "country", "operator": "is", "values": EU_COUNTRIES}]}]},
        created=t0 + 3700)

    play_filters = {
        "score_inbound_companies": {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
            {"kind": "date", "columnSlug": "created_at", "operator": "isNotNull"}]}]},
        "find_decision_makers": {"conjonction": "and", "groups": [{"conjonction": "or", "conditions": [
            {"kind": "string", "columnSlug": "title", "operator": "contains",
             "values": ["ceo", "cto", "vp", "head", "director", "chief"]}]}]},
        "qualify_inbound_companies": {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
            {"kind": "date", "columnSlug": "created_at", "operator": "isNotNull"}]}]},
    }
    for n, spec in enumerate(build_specs()):
        _add_workflow(store, ids, spec, created=t0 + 7200 + n * 600, connectors=connectors,
                      play_filter=play_filters.get(spec.key), scheduled=n == 0)
    store.subscription_uuid = ids.uuid()


def seed_agent_play(store: Store) -> str:
    """Add the play "Classify inbound companies", seeded by default (ledger row 108): an ``agent`` node and a
    ``variables`` node both slugged ``classify``, the agent with ``retry``, ``fallbackOnFailure`` and
    ``fallbackChildUuid`` (CARGO-DOCS 4.5, 15.4). Its uuids come from their own namespace, so the rest of the
    seeded workspace is the same with or without it, down to the runtime sequence batches and runs draw their
    uuids from (its segment's Changes, at seeding and after record edits, take their uuids from a namespace of
    their own too), so that a batch or run gets the same uuid, and so the same simulated durations, as in the
    six-workflow workspace."""
    ids = IdFactory(store.seed, "agent-play")
    connectors = {c["integrationSlug"]: uuid for uuid, c in store.connectors.items()}
    flt = {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "date", "columnSlug": "created_at", "operator": "isNotNull"}]}]}
    return _add_workflow(store, ids, agent_play_spec(), created=store.clock.now() - 29 * 86400,
                         connectors=connectors, play_filter=flt, scheduled=False,
                         change_ids=IdFactory(store.seed, "agent-play-changes"))


def seed_synthetic_workflows(store: Store, count: int) -> list[str]:
    """Add ``count`` more plays and tools (plays first when odd) for scale tests; return their workflow uuids.

    Each is a renamed copy of a seeded workflow (alternating between the two plays, and between the two
    tools), with its own workflow, deployed release with slugged nodes, and, for a play, its own segment
    over a 3-record slice of the model (so seeding stays fast: about 1 ms a play). They run like the
    seeded ones. Names are ``"<seeded name> #0001"``, ``"#0002"``, ... per kind. Deterministic for the
    store's seed; uuids come from their own namespace, so the seeded workspace is unchanged.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if count == 0:
        return []
    ids = IdFactory(store.seed, "synthetic")
    connectors = {c["integrationSlug"]: uuid for uuid, c in store.connectors.items()}
    specs = build_specs()
    plays = [s for s in specs if s.kind == "play"]
    tools = [s for s in specs if s.kind == "tool"]
    id_prefix = {"companies": "cmp", "contacts": "ctc"}
    size = {"companies": N_COMPANIES, "contacts": N_CONTACTS}
    base = store.clock.now() - 29 * 86400
    n_plays = (count + 1) // 2
    created: list[str] = []
    for i in range(count):
        is_play = i < n_plays
        k = i if is_play else i - n_plays  # index within its kind
        template = (plays if is_play else tools)[k % 2]
        spec = replace(template, key=f"{template.key}_{k + 1:04d}", name=f"{template.name} #{k + 1:04d}")
        play_filter = None
        if is_play:
            model = template.model_slug or ""
            ids_slice = [f"{id_prefix[model]}_{(3 * k + j) % size[model] + 1:04d}" for j in range(3)]
            play_filter = {"conjonction": "and", "groups": [{"conjonction": "or", "conditions": [
                {"kind": "string", "columnSlug": "_id", "operator": "is", "values": ids_slice}]}]}
        created.append(_add_workflow(store, ids, spec, created=base + 60 * i, connectors=connectors,
                                     play_filter=play_filter, scheduled=False))
    return created
