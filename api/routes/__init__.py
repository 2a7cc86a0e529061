"""The web UI's page routes, one module per kind of user; common.py holds what they share."""
