"""The inference service: in-memory models, single and batch prediction."""

from atalaia.api.inference.app import create_app, model_serving, routers

__all__ = ["create_app", "model_serving", "routers"]
