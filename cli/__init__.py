"""The `sessiond` command: its subcommands, the text renderer and the demo."""
