"""``robust-ray search``: Optuna proposes the levels, Ray Tune trains them.

A grid trains a model at every level to learn where robustness peaks; a search asks Optuna
for the next level to try given the trials so far, and runs it as the very trial ``run``
runs (:func:`robust_ray.trial.execute_trial`). See :mod:`.run` for the whole flow.
"""
