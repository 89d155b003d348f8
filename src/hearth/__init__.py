"""Hearth: a self-hosted LLM server."""

__version__ = "0.1.0"
