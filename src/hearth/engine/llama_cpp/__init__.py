"""The in-process llama.cpp engine: one scheduler thread per model, continuous batching."""
