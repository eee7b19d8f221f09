"""``dg scaffold defs dagster_cargo.CargoWorkspaceComponent <name>``: a ``defs.yaml`` whose
workspace block reads the API token and the API host from the environment
(``"{{ env.CARGO_API_TOKEN }}"``, ``"{{ env.CARGO_BASE_URL }}"``)."""

from dagster.components.component_scaffolding import scaffold_component
from dagster.components.scaffold.scaffold import Scaffolder, ScaffoldRequest
from pydantic import BaseModel, Field

__all__ = ["CargoScaffolderParams", "CargoWorkspaceComponentScaffolder"]


class CargoScaffolderParams(BaseModel):
    api_token_env_var: str = Field(
        default="CARGO_API_TOKEN", description="Environment variable holding the Cargo API token."
    )
    workspace_uuid_env_var: str | None = Field(
        default=None, description="Environment variable holding the workspace UUID (workspace-scoped tokens need none)."
    )
    base_url_env_var: str | None = Field(
        default="CARGO_BASE_URL", description="Environment variable holding the Cargo API host (e.g. the emulator's "
        "URL); unset, Cargo's own API (https://api.getcargo.io) is used. Null: no base_url line."
    )
    base_url: str | None = Field(default=None, description="Cargo API host written as is (instead of the variable).")


class CargoWorkspaceComponentScaffolder(Scaffolder[CargoScaffolderParams]):
    """Writes ``defs.yaml`` with ``workspace.api_token: "{{ env.CARGO_API_TOKEN }}"``: the token
    itself never lands in the project."""

    @classmethod
    def get_scaffold_params(cls) -> type[CargoScaffolderParams]:
        return CargoScaffolderParams

    def scaffold(self, request: ScaffoldRequest[CargoScaffolderParams]) -> None:
        params = request.params
        workspace = {"api_token": f"{{{{ env.{params.api_token_env_var} }}}}"}
        if params.workspace_uuid_env_var:
            workspace["workspace_uuid"] = f"{{{{ env.{params.workspace_uuid_env_var} }}}}"
        if params.base_url:
            workspace["base_url"] = params.base_url
        elif params.base_url_env_var:  # without it, a refresh against the emulator would go to production
            workspace["base_url"] = f"{{{{ env.{params.base_url_env_var} }}}}"
        scaffold_component(request, {"workspace": workspace})
