"""The web form and JSON API over a model artifact.

``app`` (factory, errors) · ``service`` (model -> fields, scoring, explanations) · ``fields`` (input
rules) · ``forms`` (Flask-WTF form) · ``views`` (pages) · ``api`` (``/api/v1``) · ``ops`` (``/healthz``,
``/metrics``) · ``metrics`` (multiprocess-safe Prometheus metrics) · ``explain`` and ``charts`` (result
page) · ``serve`` and ``gunicorn_conf`` (``segmenter serve``).
"""
