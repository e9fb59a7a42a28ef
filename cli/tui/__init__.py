"""`sessiond tui`: a terminal view of every store, its cleanup plan and undo, on the client only."""
