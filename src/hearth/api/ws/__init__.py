"""The WebSocket surface: /v1/ws."""

from hearth.api.ws.socket import router

__all__ = ["router"]
