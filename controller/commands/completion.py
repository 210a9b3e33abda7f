"""`clawpen completion bash|zsh|fish`: shell completion for commands, kinds and resource names.

Names are completed by asking `clawpen get TYPE -o name` at completion time, so they follow the
store (and CLAWPEN_HOME) without a cache. The scripts are generated from the argument parser, so a
new command is completed without touching this module.
"""

from __future__ import annotations

import argparse

KINDS = "agents teams templates all agent team template"
NAME_COMMANDS = "describe delete start stop restart logs chat edit top"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="bash: source <(clawpen completion bash); zsh: source <(clawpen completion zsh); "
        "fish: clawpen completion fish | source",
    )
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete for")
    p.set_defaults(handler=cmd_completion)


def _commands() -> list[str]:
    from controller.cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse has no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []


BASH = r"""# clawpen bash completion
_clawpen() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]}
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "%(commands)s" -- "$cur")); return; fi
  case "$cmd" in
    get|describe|delete|edit|wait|explain)
      if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=($(compgen -W "%(kinds)s" -- "$cur")); return; fi
      local kind=${COMP_WORDS[2]}
      COMPREPLY=($(compgen -W "$(clawpen get "$kind" -o name 2>/dev/null | sed 's|.*/||')" -- "$cur"));;
    start|stop|restart|logs|chat|top)
      COMPREPLY=($(compgen -W "$(clawpen get agents -o name 2>/dev/null | sed 's|.*/||')" -- "$cur"));;
  esac
}
complete -F _clawpen clawpen
"""

ZSH = r"""#compdef clawpen
# clawpen zsh completion (uses bash completion emulation)
autoload -U +X bashcompinit && bashcompinit
""" + BASH

FISH = r"""# clawpen fish completion
complete -c clawpen -f
complete -c clawpen -n "__fish_use_subcommand" -a "%(commands)s"
complete -c clawpen -n "__fish_seen_subcommand_from get describe delete edit wait explain" -a "%(kinds)s"
complete -c clawpen -n "__fish_seen_subcommand_from %(names)s" \
  -a "(clawpen get agents -o name 2>/dev/null | string replace -r '.*/' '')"
"""


def cmd_completion(args: argparse.Namespace) -> int:
    script = {"bash": BASH, "zsh": ZSH, "fish": FISH}[args.shell]
    print(script % {"commands": " ".join(_commands()), "kinds": KINDS, "names": NAME_COMMANDS}, end="")
    return 0
