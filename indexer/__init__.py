"""Turns raw patent and demand records into searchable artefacts; knows nothing about queries."""
