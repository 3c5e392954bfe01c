"""HTTP services. Each is an app factory; they never import one another."""
