"""The tables. Papers are stored once, keyed by PMID; everything else points at them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel


class PaperRow(SQLModel, table=True):
    __tablename__ = "paper"

    pmid: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = "article"
    title: str = ""
    abstract: str = ""
    abstract_sections: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    authors: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    journal: str | None = None
    journal_iso: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    pub_date_text: str | None = None
    pub_date: date | None = Field(default=None, index=True)
    pub_year: int | None = None
    doi: str | None = None
    pmcid: str | None = None
    publication_types: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    mesh_headings: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    keywords: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    languages: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    citation_status: str | None = None
    history: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    comments_corrections: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    entrez_date: date | None = None
    create_date: date | None = Field(default=None, index=True)
    late_arrival: bool = False
    xml_gz: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    first_stored_at: datetime
    updated_at: datetime


class TopicPaper(SQLModel, table=True):
    """A paper's membership in a topic: when the topic first saw it and which run found it."""

    __tablename__ = "topic_paper"
    __table_args__ = (Index("ix_topic_paper_topic_seen", "topic", "first_seen_at"),)

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid", index=True)
    first_seen_at: datetime
    run_id: int | None = Field(default=None, foreign_key="run.id")


class Run(SQLModel, table=True):
    __tablename__ = "run"
    __table_args__ = (Index("ix_run_topic_started", "topic", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str
    kind: str = "fetch"  # fetch, backfill or query
    status: str = "running"  # running, succeeded, failed
    started_at: datetime
    finished_at: datetime | None = None
    window_start: date | None = None
    window_end: date | None = None
    count: int | None = None
    matched: int = 0
    new_papers: int = 0
    fetched: int = 0
    missing: int = 0
    requests: int = 0
    error: str | None = None
    pid: int | None = None
    query: str | None = None
    query_translation: str | None = None
    warnings: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class TopicState(SQLModel, table=True):
    """Where a topic's next incremental run starts. Written only by a run that succeeded."""

    __tablename__ = "topic_state"

    topic: str = Field(primary_key=True)
    query: str
    since: date | None = None
    watermark: date
    last_run_id: int | None = Field(default=None, foreign_key="run.id")
    updated_at: datetime


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "tracker_schema"

    id: int = Field(default=1, primary_key=True)
    version: int
    updated_at: datetime
