"""App output: capture from pipes, rotating log files, the daemon's stdout and its structured log setup."""
