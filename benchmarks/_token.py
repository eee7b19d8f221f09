"""The benchmarks' Cargo resources take their token as the docs tell users to: ``dg.EnvVar``."""

from __future__ import annotations

import os
from typing import Any


def env_token(token: str, name: str = "CARGO_API_TOKEN") -> Any:
    """``dg.EnvVar(name)``, with the variable set to ``token`` in this process: Dagster's config then holds only
    the variable's name (and no token-exposure warning is printed), and the resource reads the token at run time."""
    import dagster as dg

    os.environ[name] = token
    return dg.EnvVar(name)
