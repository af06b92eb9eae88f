"""The cluster profile: schema, loading and validation, built-ins, secrets."""
