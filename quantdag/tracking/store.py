"""The data dir's MLflow store for code that runs without Dagster (the ``quantdag`` command, notebooks).

Same layout as the pipeline's resource (``resources/mlflow.py``): ``<data>/mlflow.db`` (SQLite, an
absolute URI: MLflow 3.17 refuses ``./mlruns`` and resolves defaults against the working
directory) and artifacts in ``<data>/mlartifacts/<experiment>``; experiments are created tagged as
model development, so MLflow's UI shows them in its Machine learning view.
"""

from __future__ import annotations

from pathlib import Path

#: The experiment tag MLflow 3.x's UI reads for an experiment's kind, and our experiments' value.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
ARTIFACTS_DIR = "mlartifacts"


def tracking_uri(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'mlflow.db'}"


def open_experiment(data_dir: str | Path, name: str) -> str:
    """Point MLflow at ``data_dir``'s store (creating it) and return experiment ``name``'s id (created if missing)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    d = Path(data_dir).resolve()
    uri, root = tracking_uri(d), (d / ARTIFACTS_DIR).as_uri()
    if not (d / "mlflow.db").exists():
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        d.mkdir(parents=True, exist_ok=True)
        SqlAlchemyStore(uri, root)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=f"{root}/{name}", tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT})
    except MlflowException as exc:  # another process created it meanwhile
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id
