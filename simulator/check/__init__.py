"""The receiver checker's edge: running checks, transports, the pytest plugin, serving apps."""
