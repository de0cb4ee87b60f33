"""The `pipworks` command: one entry point for every service in the container image."""
