"""The figures' experiment configs, in the package: each ``<name>.py`` has ``SCALES`` and ``get_config(scale)``."""
