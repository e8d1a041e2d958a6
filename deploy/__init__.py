"""Composition roots and deployment: the `segmenter` CLI, the web app, local Kafka, compose files."""
