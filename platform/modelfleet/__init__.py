"""modelfleet: a fleet of open-weights LLMs declared as folders, served by vLLM.

Each folder under ``models/`` declares one model; the platform turns it into an
authenticated vLLM server on Modal (production) or on this machine (``local``).
"""

__version__ = "0.1.0"
