"""Tools for the agent program: the loop that lets a model act, the workspace built-ins, MCP servers.

Why here and not in the controller: the container is the sandbox. Everything a tool does happens with
the agent's own rights inside its hardened container, on its own /workspace volume; the gateway only
relays the events. The controller decides *which* tools an agent has (spec.tools, rendered into
CLAWPEN_TOOLS by controller/tools_config.py); this package obeys that and nothing else.
"""
