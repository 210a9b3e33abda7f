"""Warm pool: started, unconfigured agent containers a new agent claims instead of booting its own.

- shape.py: which container a template's pool keeps and which agents may take one (pure),
- claims.py: the claim book (agent ↔ pool container, volumes, secret directory), kept on disk,
- task.py: the controller task that keeps each pool at its size and drains what is no longer wanted.
The Docker mechanics (create a slot, claim it, drain) are in controller.runtime.docker_pool.
"""
