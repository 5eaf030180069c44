"""The benchmark harness: omnitron against the raw limit and its peers (see bench/README.md)."""
