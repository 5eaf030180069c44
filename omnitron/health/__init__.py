"""Health: probes for app instances (probes.py) and the daemon's HTTP endpoints (app.py, server.py)."""
