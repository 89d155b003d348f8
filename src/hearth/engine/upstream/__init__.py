"""Models served by a pool of OpenAI-compatible engines (vLLM, SGLang, llama-server,
Ollama, other Hearth processes): see backend.py."""
