"""Dagster Definitions, jobs, schedules and sensors."""
