"""HTTP API blueprints (flask-smorest): parse with a schema, call one operation, dump."""
