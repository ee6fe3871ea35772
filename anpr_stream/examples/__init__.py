"""Example configuration shipped as package data: the demo zone's camera registry (cameras.csv), the default when
ANPR_CAMERAS_FILE is unset and the model for an installation's own registry."""
