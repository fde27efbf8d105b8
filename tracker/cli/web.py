"""`tracker serve` and `tracker users`."""

from __future__ import annotations

import sys

import click

from tracker.cli.base import (
    Count,
    cli,
    common_options,
    current_settings,
    current_store,
    load_all_topics,
)
from tracker.cli.output import format_table, when
from tracker.errors import ConfigError


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; another than loopback needs accounts (tracker users add).")
@click.option("--port", type=Count(min=None, max=None), default=8765, show_default=True, help="Port to listen on (1-65535).")
@click.option("--open", "open_browser", is_flag=True, help="Open the app in the default browser.")
@common_options
def serve_command(host, port, open_browser):
    """Serve the web app: topics, papers, search, PubMed queries, runs, PRISMA and screening."""
    from tracker.web import serve

    serve(current_settings(), host=host, port=port, open_browser=open_browser, say=click.echo,
          warn=lambda line: click.echo(line, err=True))


@cli.group("users")
def users_group():
    """The web app's team accounts: with one, tracker serve asks everyone to log in."""


def read_password(confirm: bool = True) -> str:
    """From a hidden prompt on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    line = sys.stdin.readline()
    if not line.strip():
        raise ConfigError("no password on standard input: pipe one line, or run the command in a terminal")
    return line.rstrip("\r\n")


@users_group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May also save topics from the Query page and manage accounts.")
@common_options
def users_add_command(name, admin):
    """Add an account (the password from a prompt, or from standard input)."""
    from tracker.web.accounts import add_user, check_name

    check_name(name)
    account = add_user(current_store(), name, read_password(), admin=admin)
    click.echo(f"added {account.role} {account.name!r}: tracker serve asks everyone to log in (restart it if it is running)")


@users_group.command("list")
@common_options
def users_list_command():
    """List the accounts and their roles."""
    from tracker.store.accounts import list_accounts

    accounts = list_accounts(current_store())
    if not accounts:
        click.echo("no accounts: tracker serve runs in personal mode (add one with 'tracker users add NAME')")
        return
    click.echo(format_table(["name", "role", "added (UTC)", "password changed (UTC)"], [
        [account.name, account.role, when(account.created_at), when(account.password_changed_at)]
        for account in accounts]))


@users_group.command("remove")
@click.argument("name")
@common_options
def users_remove_command(name):
    """Remove an account and end its sessions (its decisions stay in the history)."""
    from tracker.web.accounts import remove_user

    remove_user(current_store(), name)
    click.echo(f"removed {name!r}")


@users_group.command("passwd")
@click.argument("name")
@common_options
def users_passwd_command(name):
    """Change an account's password (from a prompt, or standard input); its sessions end."""
    from tracker.store.accounts import list_accounts
    from tracker.web.accounts import change_password

    store = current_store()
    if name not in {account.name for account in list_accounts(store)}:
        raise ConfigError(f"no user {name!r}: 'tracker users list' lists them")
    change_password(store, name, read_password())
    click.echo(f"changed the password of {name!r}; their sessions have ended")


@users_group.command("feed-token")
@click.argument("name", required=False)
@click.option("--revoke", is_flag=True, help="Revoke the token: its feed addresses stop working.")
@common_options
def users_feed_token_command(name, revoke):
    """Make (or with --revoke, end) the token in NAME's topic feed addresses; without NAME, yours in personal mode.

    Feed readers (Zotero, Outlook, Thunderbird, Feedly) cannot log in, so each address carries the token: it reads
    the topic feeds and nothing else. A new token replaces the old one. The addresses start with [web] public_url.
    """
    from tracker.outputs.feeds import feed_url
    from tracker.web import DEFAULT_HOST, DEFAULT_PORT
    from tracker.web.accounts import issue_feed_token, revoke_feed_token

    store = current_store()
    whose = f"{name}'s" if name else "your"
    if revoke:
        if not revoke_feed_token(store, name):
            raise ConfigError(f"{'user ' + repr(name) if name else 'personal mode'} has no feed token: nothing to revoke")
        click.echo(f"revoked {whose} feed token: its feed addresses no longer work")
        return
    token = issue_feed_token(store, name)
    settings = current_settings()
    base = settings.web_public_url or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/"
    topics = load_all_topics()
    click.echo(f"{whose} topic feeds (the token replaces any earlier one; keep the addresses private, they need no "
               "login):")
    for topic in topics:
        click.echo(f"  {topic.slug}: {feed_url(base, topic.slug)}?token={token}")
    if not topics:
        click.echo(f"  (no topics yet) {feed_url(base, 'SLUG')}?token={token}")
    if settings.web_public_url is None:
        click.echo(f"note: these addresses are tracker serve's on this machine ({base}); for colleagues, set [web] "
                   "public_url in tracker.toml to the address they open the web app at, and run this again", err=True)
