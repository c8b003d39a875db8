"""Versioned annotator prompts, shipped as package data (`<name>.md`, loaded by `classifiers.prompt`)."""
