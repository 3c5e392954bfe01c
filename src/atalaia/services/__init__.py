"""Application services: one function per use case, over the core and the adapters."""
