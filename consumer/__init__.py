"""The streaming scorer: the only package that talks to Kafka."""
