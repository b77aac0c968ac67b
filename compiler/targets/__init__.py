"""Build and run generated code: on this PC (host) and, later, on boards."""
