"""What the `tensorflow` and `keras` flavors share: custom objects, file layouts, loading, pyfunc wrappers."""
