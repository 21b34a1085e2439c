"""Built-in plugins: the defaults, registered through the same hooks as third-party plugins."""
