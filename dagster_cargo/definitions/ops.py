"""An op for job-based users: create a batch, wait, download, emit metadata.

Example:
    .. code-block:: python

        import dagster as dg
        from dagster_cargo import CargoResource
        from dagster_cargo.definitions.ops import cargo_batch_op

        @dg.job(resource_defs={"cargo": CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"))})
        def score_companies():
            cargo_batch_op()

        # run config: {"ops": {"cargo_batch_op": {"config": {"workflow": "Score inbound companies", "limit": 50}}}}
"""

from typing import Any

import dagster as dg
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoInputError
from cargo_gtm.inputs import play_input
from pydantic import Field

from ..running.resource import CargoResource

__all__ = ["CargoBatchOpConfig", "cargo_batch_op"]


class CargoBatchOpConfig(dg.Config):
    """What the op runs. ``workflow`` is a play or tool name or UUID."""

    workflow: str = Field(description="Name or UUID of the play or tool to run.")
    workflow_type: str = Field(default="auto", description="'play', 'tool' or 'auto' (look the name up in both).")
    data: dict[str, Any] | None = Field(
        default=None, description="Raw batch data ({'kind': ...}); overrides the fields below."
    )
    filter: dict[str, Any] | None = Field(default=None, description="Plays: a Cargo Filter over the model.")
    limit: int | None = Field(default=None, description="Plays: at most this many records.")
    record_ids: list[str] | None = Field(default=None, description="Plays: these record ids only.")
    records: list[dict[str, Any]] | None = Field(
        default=None, description="Tools: records to run over (or connect the op's `records` input)."
    )
    output_node_slug: str | None = Field(default=None, description="Download this node's outputs instead.")


@dg.op(
    ins={"records": dg.In(dagster_type=Any, default_value=None, description="Tools: a DataFrame or list of dicts.")},
    out=dg.Out(dagster_type=Any, description="The batch outputs as a pandas DataFrame."),
    tags={"kind": "cargo"},
)
def cargo_batch_op(context: dg.OpExecutionContext, config: CargoBatchOpConfig, cargo: CargoResource, records):
    """Run one Cargo batch and output its DataFrame, with credit metadata."""
    client = cargo.get_client()
    kind = config.workflow_type if config.workflow_type != "auto" else _kind_of(client, config.workflow)
    if kind == "play":
        play = client.find_play(config.workflow)
        data = config.data if config.data is not None else play_input(
            play.model_uuid, record_ids=config.record_ids, filter=config.filter, limit=config.limit,
            play_name=play.name)
        result = cargo.run_play(context, play, data=data, output_node_slug=config.output_node_slug)
    else:
        tool = client.find_tool(config.workflow)
        rows = records if records is not None else (config.records or [])
        if config.data is not None:
            result = cargo.run_workflow(context, cargo.workflow_props(tool, "tool"), config.data,
                                        output_node_slug=config.output_node_slug)
        else:
            result = cargo.run_tool(context, tool, rows, output_node_slug=config.output_node_slug)
    return result.output()


def _kind_of(client: CargoClient, name: str) -> str:
    """'play' or 'tool': the name resolves exactly as ``run_play``/``run_tool`` resolve it, in one of the two."""
    found: dict[str, Any] = {}
    errors: list[str] = []
    for kind, find in (("play", client.find_play), ("tool", client.find_tool)):
        try:
            found[kind] = find(name)
        except CargoInputError as exc:
            errors.append(str(exc))
    if len(found) == 2:
        raise CargoInputError(
            f"{name!r} names both a Cargo play ({found['play'].uuid}) and a tool ({found['tool'].uuid}). Next step: "
            "set workflow_type to 'play' or 'tool', or pass the UUID."
        )
    if not found:
        raise CargoInputError(" ".join(errors))
    return next(iter(found))
