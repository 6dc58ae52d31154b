"""The repository's pytest wiring is the queue-chaos plugin itself (harness/plugin.py), which the
package registers as a ``pytest11`` entry point: the same options, fixtures and report whether
pytest runs here (``make durability``, ``make test``) or in a team's own repository."""
