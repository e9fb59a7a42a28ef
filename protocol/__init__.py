"""Wire types shared by the daemon and every client: the one place they are defined."""
