"""robust_ray: training-data perturbation sweeps on Ray."""

__version__ = "0.1.0"
