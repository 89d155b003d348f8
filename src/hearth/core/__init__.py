"""Leaf layer: configuration, the error family, small helpers. Imports nothing of hearth."""
