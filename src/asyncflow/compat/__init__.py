"""Compatibility layers: other libraries' APIs on asyncflow's engine.

- :mod:`asyncflow.compat.videoflow`: videoflow 0.2.10's modules and names, so a
  videoflow script runs after one change, ``videoflow.`` → ``asyncflow.compat.videoflow.``.
"""

__all__: list[str] = []
