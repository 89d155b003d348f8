"""HTTP surfaces: each translates its wire format to the engine's request and back."""
