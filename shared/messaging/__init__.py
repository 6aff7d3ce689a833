"""Kafka (phase 3 on): clients, message schemas, topics, offsets, partition ownership."""
