"""Everything evalsvc does lives here; the CLI and the HTTP service are thin shells over it."""
