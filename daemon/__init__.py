"""The I/O shells: durable files, live stores, the watch loop, both dialects, the server."""
