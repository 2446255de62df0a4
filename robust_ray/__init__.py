"""robust_ray: training-data perturbation sweeps on Ray."""

__version__ = "0.1.0"

__all__ = ["evaluate"]


def __getattr__(name: str):
    # lazy: `import robust_ray` stays light (no torch, no pandas) until evaluate is asked for
    if name == "evaluate":
        from .evaluate import evaluate

        globals()["evaluate"] = evaluate  # the function, not the submodule the import bound here
        return evaluate
    raise AttributeError(f"module 'robust_ray' has no attribute {name!r}")
