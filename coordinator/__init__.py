"""mgcoord: a multi-agent coordination runner with an automation mode."""
