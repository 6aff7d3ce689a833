"""The Kafka agent (phase 3 on): its loop, its reports and heartbeats, and cancels (phase 4)."""
