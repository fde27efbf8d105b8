"""`tracker db migrate` and `tracker db copy`."""

from __future__ import annotations

import sys

import click

from tracker.cli.base import (
    cli,
    common_options,
    current_settings,
    current_store,
)
from tracker.cli.output import ProgressBar, format_table
from tracker.errors import ConfigError


@cli.group("db")
def db_group():
    """Database maintenance: upgrade the schema, copy the database to another back end (SQLite, PostgreSQL)."""


@db_group.command("migrate")
@click.option("--check", is_flag=True,
              help="Only say which migrations would run, changing nothing; exit 1 when some are pending.")
@click.option("--no-backup", is_flag=True,
              help="Upgrade a SQLite database without first copying it to db/backups/ (the last three copies are kept).")
@common_options
def db_migrate_command(check, no_backup):
    """Upgrade the database (TRACKER_DB_URL, else db/tracker.sqlite3) to this tracker's schema, in one transaction,
    then read again the study facts an older extractor wrote.

    A SQLite database is first copied, as it was, to backups/ beside it (SQLite's online backup, named with its old
    schema and the date); the last three copies are kept. A PostgreSQL database's backups are its team's.
    """
    from tracker.facts import EXTRACTOR_VERSION
    from tracker.store import Store
    from tracker.store.schema import FACTS_SECONDS_PER_PAPER, describe_cost, describe_migrations, describe_work
    from tracker.store.studyfacts import count_stale_facts, refresh_stale_facts
    from tracker.store.upgrade import upgrade_store

    store = Store(current_settings().database_url)
    try:
        state = store.schema_state()
        where = store.describe()
        if state.kind in ("foreign", "newer"):
            store.ensure_schema()  # raises the refusal
        pending = state.pending
        stale = count_stale_facts(store)
        older = (f"{stale:,} paper{'' if stale == 1 else 's'} hold{'s' if stale == 1 else ''} study facts from an "
                 f"older extractor (this one is version {EXTRACTOR_VERSION})")
        if check:
            if state.kind == "empty":
                click.echo(f"{where} holds no tracker database yet: 'tracker db migrate' creates it")
            elif pending:
                click.echo(f"{where} is at schema {state.version}; pending: {describe_migrations(pending)}"
                           + (f"; then {older} to read again" if stale else ""))
            elif stale:
                click.echo(f"{where} is at schema {state.version}, this tracker's; {older}: 'tracker db migrate' "
                           f"reads them again ({describe_work(stale, FACTS_SECONDS_PER_PAPER)})")
            else:
                click.echo(f"{where} is at schema {state.version}, this tracker's: nothing to do")
            sys.exit(1 if state.kind == "empty" or pending or stale else 0)
        if state.kind == "empty":
            store.migrate()
            click.echo(f"created the tracker database at {where} (schema {store.schema_state().version})")
            return
        if pending:
            click.echo(f"upgrading {where} from schema {state.version} to {pending[-1].version} "
                       f"({describe_migrations(pending)}): {describe_cost(pending, store.count_papers())}")
            upgrade = upgrade_store(store, backup=not no_backup,
                                    on_backup=lambda path: click.echo(f"the database as it was is kept in {path}"),
                                    on_step=lambda migration: click.echo(f"  {migration.version} {migration.name} ..."))
            if upgrade is None:  # another process upgraded it meanwhile
                click.echo(f"{where} is at schema {store.schema_state().version}, this tracker's")
            else:
                click.echo(f"{where} is at schema {upgrade.new_version} ({upgrade.seconds:.1f} s)")
            stale = count_stale_facts(store)
            if not stale:
                return
            said = (f"{stale:,} paper{'' if stale == 1 else 's'} still hold{'s' if stale == 1 else ''} study facts from "
                    "an older extractor")
        elif not stale:
            click.echo(f"{where} is at schema {state.version}, this tracker's: nothing to do")
            return
        else:
            said = f"{where} is at schema {state.version}, this tracker's; {older}"
        click.echo(f"{said}: reading them again ({describe_work(stale, FACTS_SECONDS_PER_PAPER)})")
        bar = ProgressBar("reading study facts", threshold=10_000)
        try:
            done = refresh_stale_facts(store, progress=lambda papers: bar(papers, stale))
        finally:
            bar.close()
        click.echo(f"read the study facts of {done.papers:,} paper{'' if done.papers == 1 else 's'} again "
                   f"({done.seconds:.1f} s)")
    finally:
        store.close()


@db_group.command("copy")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="The empty database to copy into, e.g. postgresql+psycopg://user@host/tracker or "
                   "sqlite:///path/tracker.sqlite3. Leave the password out to take it from PGPASSWORD or ~/.pgpass.")
@common_options
def db_copy_command(target_url):
    """Copy this tracker's database (TRACKER_DB_URL, else db/tracker.sqlite3) into an empty database.

    Papers, runs, how far each topic was searched, change checks, digests, the e-mail ledgers, status events, paper revisions and
    scheduled jobs keep their ids; the search index is rebuilt on the target. The target is written in one
    transaction: on any failure it is left as it was. Point TRACKER_DB_URL at the copy to use it.
    """
    from tracker.store.copy import copy_database

    settings = current_settings()
    default_file = settings.db_dir / "tracker.sqlite3"
    if settings.db_url is None and not default_file.exists():
        raise ConfigError(f"no tracker database at {default_file}: run in your tracker home, pass --home, "
                          "or set TRACKER_DB_URL to the database to copy")
    store = current_store(readonly=True)
    bars: dict[str, ProgressBar] = {}
    shown: dict[str, int] = {}

    def progress(table: str, done: int, total: int) -> None:
        bar = bars.setdefault(table, ProgressBar(f"copying {table}", threshold=10_000))
        bar(done - shown.get(table, 0), total)
        shown[table] = done
        if done >= total:
            bar.close()

    try:
        report = copy_database(store, target_url, progress=progress)
    except KeyboardInterrupt:
        for bar in bars.values():
            bar.close()
        click.echo("error: interrupted: the copy was rolled back and the target left as it was", err=True)
        sys.exit(130)
    finally:
        for bar in bars.values():
            bar.close()
    click.echo(f"copied {report.source} to {report.target} in {report.seconds:.1f}s: {report.rows:,} rows")
    click.echo(format_table(["table", "rows"], [[name, f"{count:,}"] for name, count in report.tables]))
    skipped = [name for name in report.skipped if not name.startswith("paper_fts ")]
    click.echo(f"search index rebuilt for {report.indexed:,} papers"
               + (f"; not copied: {', '.join(skipped)}" if skipped else ""))
    if report.rows == 0:
        click.echo("warning: the source held no rows: the target now holds an empty tracker database", err=True)
    hidden = " (with its password)" if "***" in report.target_url else ""
    click.echo(f"to use the copy, set TRACKER_DB_URL={report.target_url}{hidden}")
