"""How a team runs the MLflow tracking server: ``python -m services.tracking.serve`` (see README.md here).

Not a tracking client: the sweep runner logs through ``jaxbp.tracking`` to whatever URI it is given.
"""
