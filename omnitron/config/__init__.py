"""The ecosystem config: model, units, loading and interpolation."""
