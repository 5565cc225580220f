"""libgate core: configuration, storage, catalogue, circulation, CLI and service wiring."""

__version__ = "0.1.0"
