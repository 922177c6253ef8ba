"""`import mltrail` stays light: no TensorFlow, pandas, SQLAlchemy or web framework."""

import subprocess
import sys

HEAVY = ["tensorflow", "keras", "pandas", "sqlalchemy", "alembic", "starlette", "fastapi", "uvicorn", "requests",
         "boto3", "yaml", "PIL", "matplotlib", "plotly"]


def test_import_is_light():
    code = f"import sys, mltrail; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_public_api_is_listed():
    import mltrail

    for name in mltrail.__all__:
        assert hasattr(mltrail, name), name
    for module in ("tensorflow", "keras", "pyfunc", "models", "artifacts", "entities", "types"):
        assert module in mltrail._LAZY_SUBMODULES


def test_version():
    import mltrail

    out = subprocess.run([sys.executable, "-m", "mltrail.cli", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert mltrail.__version__ in out
