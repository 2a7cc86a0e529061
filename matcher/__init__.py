"""Answers "what fits this?": reads the indexed artefacts, never writes records."""
