from .registry import backend_types, build_backend  # noqa: F401
