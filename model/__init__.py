"""The pure core of the segmenter: events, per-customer features, models, drift, artifacts.

Nothing in this package talks to Kafka or to the web; training, the streaming consumer and the web
app all call the same functions, so a customer's features are computed one way only.
"""
