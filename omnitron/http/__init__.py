"""The HTTP side: listening sockets, the embedded server, the health and control apps, metrics."""
