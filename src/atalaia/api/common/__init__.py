"""What every HTTP service shares: app assembly, auth, errors, metrics."""
