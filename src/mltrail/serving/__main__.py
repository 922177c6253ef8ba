"""`python -m mltrail.serving ...`: the `mltrail models` commands (what a model's virtualenv runs)."""

from mltrail.serving.cli import models

if __name__ == "__main__":
    models(prog_name="python -m mltrail.serving")
