"""Pure, deterministic "integration" functions used by the simulated workflow nodes.

Every output is a function of the normalised input only (a hash of it), never of batch, run order,
time or the emulator seed — the same domain always yields the same enrichment. Tests import these
functions to compute expected values.
"""

from __future__ import annotations

from typing import Any

from .util import stable_hash, unit_float

INDUSTRIES = [
    "Software", "Financial Services", "Healthcare", "Retail", "Manufacturing", "Media",
    "Education", "Logistics", "Energy", "Real Estate", "Telecommunications", "Consulting",
]
EMPLOYEE_RANGES = ["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001+"]
REVENUE_BANDS = ["<$1M", "$1M-$10M", "$10M-$50M", "$50M-$100M", "$100M-$500M", "$500M+"]
COUNTRIES = ["US", "GB", "FR", "DE", "ES", "IT", "NL", "SE", "CA", "AU", "BR", "IN", "JP", "SG"]
SENIORITIES = ["entry", "senior", "manager", "director", "vp", "c_level"]
DEPARTMENTS = ["engineering", "sales", "marketing", "finance", "operations", "product", "people"]


def _norm(value: Any) -> str:
    return "" if value is None else str(value).strip().lower()


def _slugify(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "company"


def enrich_company(domain: Any) -> dict[str, Any]:
    """Firmographics for a company domain: ``industry``, ``employee_range``, ``revenue_band``,
    ``linkedin_url``, ``hq_country``."""
    d = _norm(domain)
    h = stable_hash("enrich_company", d)
    size_idx = (h >> 8) % len(EMPLOYEE_RANGES)
    revenue_idx = min(len(REVENUE_BANDS) - 1, max(0, size_idx - 1 + (h >> 16) % 2))
    stem = d.split(".")[0] if d else "company"
    return {
        "industry": INDUSTRIES[h % len(INDUSTRIES)],
        "employee_range": EMPLOYEE_RANGES[size_idx],
        "revenue_band": REVENUE_BANDS[revenue_idx],
        "linkedin_url": f"https://www.linkedin.com/company/{_slugify(stem)}",
        "hq_country": COUNTRIES[(h >> 24) % len(COUNTRIES)],
    }


def score_company(domain: Any) -> dict[str, Any]:
    """Lead score for a company domain: ``score`` (int 0–100) and ``tier`` (A ≥ 75, B ≥ 50, C ≥ 25, else D)."""
    score = int(unit_float("score_company", _norm(domain)) * 101)
    tier = "A" if score >= 75 else "B" if score >= 50 else "C" if score >= 25 else "D"
    return {"score": score, "tier": tier}


def _email_local(pattern: int, first: str, last: str) -> str:
    """The local part of a work email for one of four patterns (first.last, flast, first, firstl)."""
    candidates = (f"{first}.{last}", f"{first[:1]}{last}", first, f"{first}{last[:1]}")
    return candidates[pattern]


SEGMENTS = ["enterprise", "mid_market", "smb", "startup"]


def classify_company(domain: Any, name: Any = None) -> dict[str, Any]:
    """An agent's market-segment classification of a company: ``label`` (enterprise|mid_market|smb|startup)
    and ``confidence`` (int 50–99)."""
    h = stable_hash("classify_company", _norm(domain))
    return {"label": SEGMENTS[h % len(SEGMENTS)], "confidence": 50 + (h >> 8) % 50}


def find_work_email(first_name: Any, last_name: Any, domain: Any) -> dict[str, Any]:
    """Work email guess: ``email``, ``email_status`` (valid|risky|unknown), ``confidence`` (int 0–100)."""
    f, l, d = _norm(first_name), _norm(last_name), _norm(domain)
    f_clean = "".join(c for c in f if c.isalnum())
    l_clean = "".join(c for c in l if c.isalnum())
    h = stable_hash("find_work_email", f, l, d)
    local = _email_local(h % 4, f_clean, l_clean) if d else ""
    confidence = 40 + (h >> 8) % 61
    status = "valid" if confidence >= 70 else "risky" if confidence >= 50 else "unknown"
    found = bool(local and d)
    return {
        "email": f"{local}@{d}" if found else None,
        "email_status": status if found else "unknown",
        "confidence": confidence if found else 0,
    }


def enrich_contact(first_name: Any, last_name: Any, company_domain: Any, title: Any = None) -> dict[str, Any]:
    """Person enrichment: ``seniority``, ``department``, ``is_decision_maker``, ``linkedin_url``.

    Seniority is read from the job title when it contains a known keyword, otherwise hashed.
    """
    f, l, d, t = _norm(first_name), _norm(last_name), _norm(company_domain), _norm(title)
    h = stable_hash("enrich_contact", f, l, d)
    seniority = SENIORITIES[h % len(SENIORITIES)]
    for keyword, value in (
        ("chief", "c_level"), ("ceo", "c_level"), ("cto", "c_level"), ("cfo", "c_level"),
        ("vp", "vp"), ("vice president", "vp"), ("head", "director"), ("director", "director"),
        ("manager", "manager"), ("lead", "senior"), ("senior", "senior"),
    ):
        if keyword in t:
            seniority = value
            break
    handle = "-".join(p for p in (f, l) if p) or "member"
    return {
        "seniority": seniority,
        "department": DEPARTMENTS[(h >> 8) % len(DEPARTMENTS)],
        "is_decision_maker": seniority in ("director", "vp", "c_level"),
        "linkedin_url": f"https://www.linkedin.com/in/{_slugify(handle)}-{(h >> 16) % 10000:04d}",
    }
