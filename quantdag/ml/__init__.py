"""Machine learning for strategies: causal features, labels with known-at times, purged validation,
models tracked and registered in MLflow. Engine code: no Dagster, no warehouse."""
