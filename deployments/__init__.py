"""Ray Serve deployments: the only code that imports ``ray``."""
