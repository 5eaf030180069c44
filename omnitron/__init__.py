"""omnitron: a process supervisor for containers and PaaS deployments."""

__version__ = "0.1.0"
