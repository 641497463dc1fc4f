"""SSH access to manager hosts (fabric), driven by the cfy profile's SSH settings."""
