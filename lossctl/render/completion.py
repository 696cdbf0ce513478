"""``lossctl completion SHELL``: how to install the completion script, as comment lines above it."""

from __future__ import annotations

SHELLS = ("bash", "zsh", "fish")

_INSTALL = {
    "bash": ("add to ~/.bashrc:", 'eval "$(lossctl completion bash)"'),
    "zsh": ("add to ~/.zshrc (after compinit):", 'eval "$(lossctl completion zsh)"'),
    "fish": ("save as ~/.config/fish/completions/lossctl.fish:", "lossctl completion fish > ~/.config/fish/completions/lossctl.fish"),
}


def completion_script(shell: str, script: str) -> str:
    """``script`` (the shell's completion code) headed by how to install it."""
    where, line = _INSTALL[shell]
    return (f"# lossctl completion for {shell}: commands, losses, options, choices, file paths.\n"
            f"# To install, {where}\n#   {line}\n{script.strip()}\n")
