"""fleetlearn's Python API (re-exported by :mod:`fleetlearn`): predict from a model message
(:class:`Model`), follow a deployment's latest model (:func:`follow`), learn river-style
(:class:`Regressor`, :class:`Classifier`). Modules load on first use.
"""
