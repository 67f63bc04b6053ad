"""Every option of every command has help text, and every command a docstring: walked through
the real click tree (the top-level LazyGroup's COMMANDS, then each group's subcommands)."""

from __future__ import annotations

from collections.abc import Iterator

import click

from writroot.cli import COMMANDS, cli


def _walk(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from _walk(command, (*path, name))


def test_the_walk_reaches_every_top_level_command() -> None:
    names = {name for name, _ in _walk(cli, ())}
    assert set(COMMANDS) <= names
    assert {"ceremony run", "hsm info", "token init", "bundle inspect"} <= names


def test_every_option_has_help_text() -> None:
    missing: list[str] = []
    for name, command in [("writroot", cli), *_walk(cli, ())]:
        if not (command.help or command.short_help):
            missing.append(f"{name}: no command help")
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}")
    assert not missing, "options without help text:\n" + "\n".join(missing)
