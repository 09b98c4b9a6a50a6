
import dagster as dg
import mlflow

from resources import MlflowResource


def test_mlflow_resource_store_is_sqlite_file_with_artifacts_beside_it(tmp_path):
    res = MlflowResource.at(tmp_path)
    with res.start_run(None, "unit", run_name="r1", tags={"k": "v"}) as run:
        mlflow.log_param("fast", 10)
        mlflow.log_metric("sharpe", 1.25)
        mlflow.log_text("hello", "notes/hello.txt")
    assert (tmp_path / "mlflow.db").is_file()
    client = mlflow.MlflowClient(res.tracking_uri)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["fast"] == "10" and got.data.metrics["sharpe"] == 1.25
    assert got.data.tags["k"] == "v"
    artifact = tmp_path / "mlartifacts" / "unit" / run.info.run_id / "artifacts" / "notes" / "hello.txt"
    assert artifact.read_text() == "hello"


def test_mlflow_run_is_tagged_with_dagster_run_asset_and_partition(tmp_path):
    res = MlflowResource.at(tmp_path)
    seen = {}

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["p1"]))
    def tracked(context: dg.AssetExecutionContext, mlflow_store: MlflowResource) -> None:
        with mlflow_store.start_run(context, "unit") as run:
            seen["run_id"] = run.info.run_id
            seen["dagster_run_id"] = context.run_id

    with dg.instance_for_test() as instance:  # an explicit instance: an ephemeral one can be collected mid-run
        assert dg.materialize([tracked], resources={"mlflow_store": res}, partition_key="p1", instance=instance).success
    tags = mlflow.MlflowClient(res.tracking_uri).get_run(seen["run_id"]).data.tags
    assert tags["dagster_run_id"] == seen["dagster_run_id"]
    assert tags["dagster_asset_key"] == "tracked"
    assert tags["dagster_partition"] == "p1"


def test_mlflow_run_ends_failed_when_body_raises(tmp_path):
    res = MlflowResource.at(tmp_path)
    run_id = None
    try:
        with res.start_run(None, "unit") as run:
            run_id = run.info.run_id
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert mlflow.MlflowClient(res.tracking_uri).get_run(run_id).info.status == "FAILED"
