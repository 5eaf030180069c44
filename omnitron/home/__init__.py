"""The stores in OMNITRON_HOME: paths, the PID lock, the state document, history and secrets."""
