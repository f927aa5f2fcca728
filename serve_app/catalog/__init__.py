"""What the platform serves, as plain types below every package that uses them: a model
version's spec and regulatory status, the content-addressed store of model files, and
the route that splits an endpoint between versions."""
