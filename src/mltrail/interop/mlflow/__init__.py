"""MLflow's stores, read and written without the `mlflow` package: `mltrail import-mlflow` and `export-mlflow`."""
