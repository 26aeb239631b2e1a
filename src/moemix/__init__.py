"""moemix."""
