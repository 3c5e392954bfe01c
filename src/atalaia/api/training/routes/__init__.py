"""Routers of the training service."""
