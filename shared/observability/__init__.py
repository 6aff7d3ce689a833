"""Phase 5: serving the metrics every layer counts, and exporting the traces they open."""
