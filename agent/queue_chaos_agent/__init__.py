"""queue-chaos's agent: the one package installed in every backend image.

It holds what runs inside a target's containers: the ledger (writer and reader, one format), the
probe task body, the readiness record, the instrumentation of a team's own app through its
framework's signals or hooks (never by editing their code), and the producer endpoint the harness
submits to. Standard library only at import time; Celery, arq, FastAPI and uvicorn are imported
only by the modules that need them, from the environment the agent is installed in.
"""

__version__ = "0.1.0"
