"""The web form and JSON API over a model artifact."""
