"""The inference service: in-memory models, single and batch prediction."""

from atalaia.api.inference.app import create_app, model_serving, routers
from atalaia.api.inference.routes import FAST_ROUTES

__all__ = ["FAST_ROUTES", "create_app", "model_serving", "routers"]
