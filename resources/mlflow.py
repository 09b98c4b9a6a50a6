"""MLflow tracking as a small Dagster resource (dagster-mlflow is legacy and leaves runs RUNNING).

The store is a sqlite file with absolute URIs: MLflow 3.17 refuses the ``./mlruns`` file store and
otherwise resolves its defaults against the working directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg


class MlflowResource(dg.ConfigurableResource):
    """An MLflow tracking store (sqlite) with artifacts beside it."""

    tracking_uri: str
    artifact_root: str

    @classmethod
    def at(cls, directory: str | Path) -> "MlflowResource":
        """The store ``<directory>/mlflow.db`` with artifacts in ``<directory>/mlartifacts``."""
        d = Path(directory).resolve()
        return cls(tracking_uri=f"sqlite:///{d / 'mlflow.db'}", artifact_root=(d / "mlartifacts").as_uri())

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created with this store's artifact root if missing."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        client = mlflow.MlflowClient(self.tracking_uri)
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return client.create_experiment(name, artifact_location=f"{self.artifact_root}/{name}")

    @contextmanager
    def start_run(
        self,
        context: dg.AssetExecutionContext | None,
        experiment: str,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        nested: bool = False,
    ) -> Iterator[Any]:
        """An MLflow run tagged with the Dagster run id, asset key and partition; always ended."""
        import mlflow

        exp_id = self.experiment_id(experiment)
        all_tags = dict(tags or {})
        if context is not None:
            all_tags["dagster_run_id"] = context.run_id
            if context.has_assets_def:
                all_tags["dagster_asset_key"] = context.asset_key.to_user_string()
            if context.has_partition_key:
                all_tags["dagster_partition"] = str(context.partition_key)
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags, nested=nested) as run:
            yield run
