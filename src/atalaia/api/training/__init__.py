"""The training service: jobs, model registry, series data, feedback."""

from atalaia.api.training.app import create_app, fleet_figures, job_executor, routers

__all__ = ["create_app", "fleet_figures", "job_executor", "routers"]
