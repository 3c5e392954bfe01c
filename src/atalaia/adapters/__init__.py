"""Adapters: databases, storage and queues behind the core's interfaces."""
