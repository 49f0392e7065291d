"""Demo agents for the ``command`` backend: stdlib-only scripts speaking the JSON protocol."""
