"""Blueprints. ``BLUEPRINTS`` is the explicit list the factory registers."""
