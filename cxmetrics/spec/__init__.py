"""The spec (``cxmetrics.yaml``) and every name derived from it: metric, label, rule and alert
names (``names``), bucket layouts, durations, YAML positions, the pydantic models and the loader.
Importing ``names`` costs no pydantic or YAML: ``model`` and ``load`` are imported only by what
loads a spec.
"""
