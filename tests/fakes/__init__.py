"""Stand-ins for what a test cannot have here: a remote LLM API (an OpenAI-compatible server on 127.0.0.1)."""
