"""MLflow REST API routes, one module per resource. Each module lists `ROUTES`: (methods, path
under `/api/2.0/mlflow`, handler) and, where it has some, `MLTRAIL_ROUTES` under `/api/2.0/mltrail`."""
