"""Offline training: datasets, model selection, validation, artifact and report."""
