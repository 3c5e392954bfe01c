"""The plot service (port 8002): read-only views of a series and its model."""

from atalaia.api.plot.app import create_app, routers

__all__ = ["create_app", "routers"]
