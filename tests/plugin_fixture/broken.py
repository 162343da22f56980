"""A plug-in module whose import fails, with a two-line message."""
raise RuntimeError("plug-in exploded\nsecond line of the message")
