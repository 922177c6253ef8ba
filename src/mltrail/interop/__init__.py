"""Interoperation with other tracking systems' stores (today: MLflow's), read and written without their packages."""
