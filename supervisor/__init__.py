"""mgsup: a background-process supervisor for multi-agent coordination runs."""
