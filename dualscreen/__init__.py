"""The dualscreen command."""
