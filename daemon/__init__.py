"""sessiond's daemon side: store model, key grammar, cleanup engine, and their I/O shell."""
