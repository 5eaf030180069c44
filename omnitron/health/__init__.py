"""Health: probes (probes.py), the one readiness rule (readiness.py) and resource sampling (resources.py)."""
