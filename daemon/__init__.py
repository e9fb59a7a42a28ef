"""sessiond's daemon side: store model, key grammar, cleanup engine, and the I/O shell around them."""
