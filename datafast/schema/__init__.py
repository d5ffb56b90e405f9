"""The original datafast's `datafast.schema` package: the config classes live in `datafast.schema.config`."""
