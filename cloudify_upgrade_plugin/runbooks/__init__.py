"""The steps of prepare / new-host / in-place, one module per concern."""
