"""The example specs (`datafast init` copies them); each compiles in CI."""
