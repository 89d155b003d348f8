"""Use cases between the surfaces and the engine/store. Never imports fastapi or starlette."""
