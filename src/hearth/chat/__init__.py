"""Chat formatting: templates, tool-call parsing, structured output. Pure, engine-agnostic."""
