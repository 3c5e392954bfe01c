"""Pure domain core: detectors, validation, registry and job rules. No I/O here."""
