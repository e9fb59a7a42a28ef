"""The client generator: protocol/schema.json in, client/generated.py and generated.ts out.

Small on purpose: `contract` reads the schema into a few dataclasses, `python_client` and
`typescript_client` each render one file from them as plain text, `outputs` knows where they go
and how they differ from the disk, and `__main__` writes or checks them. Only what differs per
method is generated; connections, reconnects and the change stream are hand-written beside each
output (client/base.py, client/typescript/src/base.ts).
"""
