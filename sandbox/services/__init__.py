"""One module per emulated product: its state (seeded from the world) and its action handlers."""
