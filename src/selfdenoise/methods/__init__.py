"""Self-supervised methods, one file each. See ``base.Method`` for the contract."""
