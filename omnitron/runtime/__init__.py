"""The daemon at run time: wiring, the supervisor, instances, their states and restart policy, processes."""
