"""Health: per-instance readiness/liveness probes (probes.py) and the health port's routes (app.py)."""
