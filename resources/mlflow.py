"""MLflow tracking as a small Dagster resource (dagster-mlflow is legacy and leaves runs RUNNING).

The store is a sqlite file with absolute URIs: MLflow 3.17 refuses the ``./mlruns`` file store and
otherwise resolves its defaults against the working directory.

Two things the store itself cannot express are fixed whenever the resource opens an experiment:

* **Kind.** MLflow 3.x shows an experiment as GenAI (traces, token costs) or as classic model
  development; the experiment tag ``mlflow.experimentKind`` records which. Ours are tagged
  ``custom_model_development`` when created, and an experiment without the tag gets it (one the
  user re-tagged in the UI keeps their choice). MLflow 3.17's UI also has a GenAI / Machine learning
  switch in its sidebar (remembered by the browser, overridden by ``?workflowType=machine_learning``
  in a URL), so links into the UI carry :data:`UI_QUERY`.
* **Location.** MLflow stores absolute artifact URIs (``file:///<data>/mlartifacts/<experiment>``,
  and each run's ``.../<run_id>/artifacts``) and has no relative form, so a copied or moved data
  dir would keep writing into the old one. An experiment laid out by this resource in another data
  dir (its location's folder is some other ``mlartifacts``) is pointed at the same folder under this
  store's ``mlartifacts``, and so is every run of it whose artifacts were copied along (or that has
  none yet); runs whose artifacts exist only in the old place keep pointing there.
"""

from __future__ import annotations

import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

# the experiment kind tag and value, and the data dir's artifact folder: one home, shared with the
# store that code without Dagster opens (quantdag.tracking.store: the quantdag command, notebooks)
from quantdag.tracking.store import ARTIFACTS_DIR, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT  # noqa: F401

#: Query string that opens MLflow 3.17's UI in its "Machine learning" view rather than GenAI.
UI_QUERY = "workflowType=machine_learning"

#: Experiment ids this process has looked up (and tagged/relocated): (tracking uri, artifact root, name) -> id.
_EXPERIMENT_IDS: dict[tuple[str, str, str], str] = {}


def _local_path(uri: str) -> Path | None:
    """The filesystem path of a ``file:`` URI or a bare path; None for any other scheme."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


class MlflowResource(dg.ConfigurableResource):
    """An MLflow tracking store (sqlite) with artifacts beside it."""

    tracking_uri: str
    artifact_root: str

    @classmethod
    def at(cls, directory: str | Path) -> MlflowResource:
        """The store ``<directory>/mlflow.db`` with artifacts in ``<directory>/mlartifacts``."""
        d = Path(directory).resolve()
        return cls(tracking_uri=f"sqlite:///{d / 'mlflow.db'}", artifact_root=(d / ARTIFACTS_DIR).as_uri())

    def _client(self) -> Any:
        """A client of the store; a new store gets its tables with ``Default`` under ``artifact_root``
        (MLflow's own default would be ``./mlruns`` of the working directory)."""
        import mlflow

        db = Path(self.tracking_uri.removeprefix("sqlite:///")) if self.tracking_uri.startswith("sqlite:///") else None
        if db is not None and not db.exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            db.parent.mkdir(parents=True, exist_ok=True)
            SqlAlchemyStore(self.tracking_uri, self.artifact_root)
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.MlflowClient(self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``: created with this store's artifact root and tagged as model
        development if missing, else tagged and relocated if need be (see the module's doc).
        Looked up once per process (a backtest batch opens hundreds of runs in it)."""
        from mlflow.exceptions import MlflowException

        cache_key = (self.tracking_uri, self.artifact_root, name)
        if cache_key in _EXPERIMENT_IDS:
            import mlflow

            mlflow.set_tracking_uri(self.tracking_uri)  # what _client() would do, without building a client
            return _EXPERIMENT_IDS[cache_key]
        client = self._client()
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                _EXPERIMENT_IDS[cache_key] = client.create_experiment(
                    name, artifact_location=f"{self.artifact_root}/{name}", tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT}
                )
                return _EXPERIMENT_IDS[cache_key]
            except MlflowException as exc:  # another process created it meanwhile
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                exp = client.get_experiment_by_name(name)
        self._adopt(client, exp)
        if exp.lifecycle_stage == "active":
            _EXPERIMENT_IDS[cache_key] = exp.experiment_id
        return exp.experiment_id

    def adopt_store(self) -> list[str]:
        """Tag and relocate every experiment of the store (``make mlflow-ui`` runs it first).

        Returns
        -------
        list[str]
            Names of the experiments whose artifact location moved to this store.
        """
        from mlflow.entities import ViewType

        client = self._client()
        return [e.name for e in client.search_experiments(view_type=ViewType.ALL) if self._adopt(client, e)]

    def _adopt(self, client: Any, exp: Any) -> bool:
        """Tag ``exp`` as model development if it has no kind; relocate it if it lives in another
        data dir's ``mlartifacts``. True if it was relocated."""
        if EXPERIMENT_KIND_TAG not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)
        new = self._relocated(exp.artifact_location)
        if new is None:
            return False
        self._relocate(exp.experiment_id, exp.artifact_location, new)
        return True

    def _relocated(self, location: str) -> str | None:
        """Where ``location`` belongs in this store, if it is another data dir's ``mlartifacts/<x>``."""
        old, root = _local_path(location), _local_path(self.artifact_root)
        if old is None or root is None or old.parent.name != ARTIFACTS_DIR or old.parent == root:
            return None
        return f"{self.artifact_root}/{location.rstrip('/').rsplit('/', 1)[-1]}"

    def _relocate(self, experiment_id: str, old: str, new: str) -> None:
        """Point the experiment, and each run of it whose artifacts came along, from ``old`` to ``new``.

        MLflow has no client call that changes a location: this goes through its SQL store's session
        and table models, as the store's own ``rename_experiment`` does. One transaction.
        """
        from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlRun
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(self.tracking_uri, self.artifact_root)
        prefix = old.rstrip("/") + "/"
        with store.ManagedSessionMaker(read_only=False) as session:
            exp = session.query(SqlExperiment).filter(SqlExperiment.experiment_id == int(experiment_id)).one()
            exp.artifact_location = new
            for run in session.query(SqlRun).filter(SqlRun.experiment_id == exp.experiment_id):
                if not run.artifact_uri or not run.artifact_uri.startswith(prefix):
                    continue
                moved = new + "/" + run.artifact_uri[len(prefix) :]
                there, here = _local_path(run.artifact_uri), _local_path(moved)
                if here.exists() or not there.exists():
                    run.artifact_uri = moved

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


def main(argv: list[str] | None = None) -> int:
    """``python -m resources.mlflow DATA_DIR``: tag and relocate the experiments of the data dir's store."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m resources.mlflow DATA_DIR", file=sys.stderr)
        return 2
    moved = MlflowResource.at(args[0]).adopt_store()
    if moved:
        print(f"MLflow: artifact locations of {', '.join(moved)} now under {Path(args[0]).resolve() / ARTIFACTS_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
