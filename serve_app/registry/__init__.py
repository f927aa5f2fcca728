"""The model registry: registering, promoting and rolling back versions, setting routes;
and a served model's lifecycle inside one replica."""
