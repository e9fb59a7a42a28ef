"""Clients of sessiond: the command line and the programmatic client."""
