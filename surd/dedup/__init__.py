"""Near-duplicate search for `surd dedup`: 64-bit perceptual hashes, an exact sub-quadratic Hamming index, and the
global first-in-shard-order-wins decision."""
