"""atalaia: anomaly detection for industrial sensor fleets."""

__version__ = "0.1.0"
