"""The health service: consolidated status of every service and dependency."""

from atalaia.api.health.app import create_app, health_monitor, routers

__all__ = ["create_app", "health_monitor", "routers"]
