"""Inference: the Backend protocol, the model registry, and the backends themselves."""
