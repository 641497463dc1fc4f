"""The single source of the plugin's version (read by setup.py, plugin.yaml tests and the CLI)."""
__version__ = '0.1.0'
