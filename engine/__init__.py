"""The pure core: decisions over values, no I/O beyond reading what callers hand in."""
