"""The web dashboard: paper accounts, strategies, sweeps, portfolio and risk, market data and the
pipeline, behind one login (``make dashboard``; README "Dashboard"). Reads the warehouse read-only,
talks to Dagster over HTTP, never imports Dagster. The app: ``quantdag.dashboard.app.create_app``."""
