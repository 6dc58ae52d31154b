"""The main job. Its parametrization (configuration x fault from the matrix) and its report
(reports/durability.md and .json, written when the session ends) come from the plugin,
harness/plugin.py, so that the same job runs from an installed package (``queue-chaos run``).

The run fails (non-zero exit) when a scenario is invalid or the self-proof does not hold: that
exit code, and reports/durability.json, are what a CI job gates on.
"""
