"""The tables. Papers are stored once, keyed by PMID; everything else points at them.

Each table declares `__table__: ClassVar[Table]` for type checkers: SQLAlchemy's declarative mapping sets it
at class creation, but SQLModel does not declare it, so `PaperRow.__table__` would not type-check otherwise.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import JSON, Column, Index, LargeBinary, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


class PaperRow(SQLModel, table=True):
    __tablename__ = "paper"
    __table__: ClassVar[Table]
    # The web app's topic page filters a topic's papers on these columns (tracker/store/listing.py). Covered by an
    # index, SQLite reads them without the row: a paper's row spans several overflow pages (abstract, authors
    # JSON, the XML), and reading a column near its end walks them, for each of 100,000 papers.
    __table_args__ = (Index("ix_paper_browse", "pmid", "evidence_tier", "pub_year", "late_arrival", "status", "design",
                            "states_dose", "population_bits"),)

    pmid: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = "article"
    title: str = ""
    abstract: str = ""
    abstract_sections: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    authors: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # "Last Initials; …" kept beside the JSON so exports need not decode every author's affiliations.
    author_names: str = ""
    # The CSV export's joined text, kept beside the JSON for the same reason (BENCHMARKS.md, export profile):
    # "; "-separated publication types, MeSH descriptors (a trailing "*" marks a major topic) and keywords.
    publication_types_text: str = ""
    mesh_terms: str = ""
    keywords_text: str = ""
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
    # Books (NCBI Bookshelf): editors as `authors` are, their "Last Initials; …" for the CSV, and the book's details.
    editors: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    editor_names: str = ""
    book_title: str | None = None
    publisher: str | None = None
    publisher_location: str | None = None
    edition: str | None = None
    book_accession: str | None = None
    location_label: str | None = None
    chapter: bool = False
    # [DataBankName, AccessionNumber] pairs, and the trial registrations (tracker/ncbi/registries.py) as
    # [registry, number, url] with their numbers "; "-joined for the CSV.
    databanks: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    trial_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    trial_ids_text: str = ""
    # What PubMed now says about the paper (tracker/ncbi/notices.py): "retracted", "concern", "deleted" or None.
    status: str | None = Field(default=None, index=True)
    # The strongest evidence tier its publication types name (tracker.ncbi.evidence.classify): the web app's topic
    # page filters and sorts 100,000 papers by it, which a JSON column could not do through an index.
    evidence_tier: str = Field(default="other", index=True)
    # Study facts read from the title and abstract (tracker/facts): the whole StudyFacts as compact JSON, the
    # extractor version that wrote it (`tracker db migrate` reads older ones again), and what the topic page filters
    # and shows as columns of their own. `evidence_tier` is the tier on arrival (tracker.facts.arrival_tier): the
    # publication types' tier, or the design's read from the abstract when they name none (`tier_from_abstract`).
    design: str = Field(default="other", index=True)
    sample_size: int | None = None
    population_bits: int = Field(default=0, index=True)  # a bit per tracker.facts.POPULATIONS value (store/rows.py)
    states_dose: bool = Field(default=False, index=True)
    tier_from_abstract: bool = False
    facts: str = ""
    facts_version: int = Field(default=0, index=True)
    xml_gz: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    first_stored_at: datetime
    updated_at: datetime


class TopicPaper(SQLModel, table=True):
    """A paper's membership in a topic: when the topic first saw it, which run found it and how it came in."""

    __tablename__ = "topic_paper"
    __table__: ClassVar[Table]
    __table_args__ = (Index("ix_topic_paper_topic_seen", "topic", "first_seen_at"),)

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid", index=True)
    first_seen_at: datetime
    run_id: int | None = Field(default=None, foreign_key="run.id")
    # query (a run of the topic's query), suggestion (added from its suggestions), import, manual (added by PMID).
    source: str = "query"


class Run(SQLModel, table=True):
    __tablename__ = "run"
    __table__: ClassVar[Table]
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
    # The query's Count without a date clause: windows differ in size, this total compares run to run.
    total_count: int | None = None
    matched: int = 0
    new_papers: int = 0
    fetched: int = 0
    missing: int = 0
    refetched: int = 0  # stored papers fetched again because PubMed modified them
    requests: int = 0
    error: str | None = None
    pid: int | None = None
    query: str | None = None
    query_translation: str | None = None
    # PubMed's ErrorList ("PhraseNotFound: x"); `warnings` holds its WarningList and tracker's own warnings.
    errors: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    warnings: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class TopicState(SQLModel, table=True):
    """Where a topic's next incremental run starts. Written only by a run that succeeded."""

    __tablename__ = "topic_state"
    __table__: ClassVar[Table]

    topic: str = Field(primary_key=True)
    query: str
    since: date | None = None
    watermark: date
    last_run_id: int | None = Field(default=None, foreign_key="run.id")
    updated_at: datetime


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "tracker_schema"
    __table__: ClassVar[Table]

    id: int = Field(default=1, primary_key=True)
    version: int
    updated_at: datetime


class Decision(SQLModel, table=True):
    """One screening decision, as given: the history is append-only, a row is never changed or deleted.

    `replaces` is the reviewer's previous decision on the same paper in the same topic (tracker/review/screening.py).
    """

    __tablename__ = "decision"
    __table__: ClassVar[Table]
    __table_args__ = (Index("ix_decision_topic_pmid", "topic", "pmid"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str
    pmid: int = Field(foreign_key="paper.pmid")
    reviewer: str
    decision: str  # include, exclude, maybe; at full text also not-retrieved; withdraw (an undone first decision)
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str = ""
    resolves: bool = False  # given with --resolve: settles a conflict between reviewers
    replaces: int | None = Field(default=None, foreign_key="decision.id")
    source: str = "cli"  # cli, import, web
    decided_at: datetime
    stage: str = "title-abstract"  # or full-text (tracker/review/states.py Stage)


class CurrentDecision(SQLModel, table=True):
    """Each reviewer's latest decision on a paper of a topic: the decision rows that nothing replaced yet."""

    __tablename__ = "current_decision"
    __table__: ClassVar[Table]

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid")
    stage: str = Field(primary_key=True, default="title-abstract")
    reviewer: str = Field(primary_key=True)
    decision_id: int = Field(foreign_key="decision.id")
    decision: str
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str = ""
    resolves: bool = False
    decided_at: datetime


class Screening(SQLModel, table=True):
    """What a topic's current decisions on a paper add up to, whatever the topic's screening mode.

    One row per stage (title and abstract, then full text). The state (unscreened, awaiting, included, excluded,
    maybe, conflict; at full text also not-retrieved) follows from these columns and the topic file's `screening`
    setting (tracker/review/states.py), so changing a topic from one reviewer to two, or naming its reviewers,
    needs no rewrite. A paper without a row has no decision at that stage.
    """

    __tablename__ = "screening"
    __table__: ClassVar[Table]
    __table_args__ = (Index("ix_screening_topic_latest", "topic", "stage", "latest"),)

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid")
    stage: str = Field(primary_key=True, default="title-abstract")
    latest: str | None = None  # the most recent current decision, of any reviewer (a single reviewer's state)
    latest_reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    resolution: str | None = None  # the most recent current decision given with --resolve
    resolution_reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    votes: int = 0  # reviewers whose current decision is not a resolution
    agreed: str | None = None  # their common decision when they all agree
    agreed_reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # all of theirs
    # Each reviewer's current decision that is not a resolution, and its reasons: a topic that names its reviewers
    # counts theirs alone (tracker/review/states.py).
    votes_by: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    vote_reasons: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class MigrationRecord(SQLModel, table=True):
    """A migration this database has had (tracker/store/schema.py): which, when, and how long it took."""

    __tablename__ = "tracker_migration"
    __table__: ClassVar[Table]

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str
    applied_at: datetime
    seconds: float = 0.0


class DigestRecord(SQLModel, table=True):
    """A digest written for a topic: the next default period starts where this one ended."""

    __tablename__ = "digest"
    __table__: ClassVar[Table]
    __table_args__ = (Index("ix_digest_topic_created", "topic", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str
    period_start: datetime | None = None
    period_end: datetime
    papers: int = 0
    path: str | None = None
    created_at: datetime


class OutboxMessage(SQLModel, table=True):
    """A message about to be sent, written with its Message-ID before SMTP sees it."""

    __tablename__ = "outbox"
    __table__: ClassVar[Table]

    message_id: str = Field(primary_key=True)
    recipient: str = Field(index=True)
    subject: str
    pmids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = "pending"  # pending, sent, failed
    error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None


class Delivery(SQLModel, table=True):
    """The delivery ledger: a paper goes to a recipient once."""

    __tablename__ = "delivery"
    __table__: ClassVar[Table]

    recipient: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid")
    topic: str
    message_id: str = Field(foreign_key="outbox.message_id", index=True)
    delivered_at: datetime


class Recipient(SQLModel, table=True):
    """A mail reader: their first mail covers papers first seen from `since` on; the ledger does the rest."""

    __tablename__ = "recipient"
    __table__: ClassVar[Table]

    address: str = Field(primary_key=True)
    since: datetime
    created_at: datetime


class InstanceLock(SQLModel, table=True):
    """A process lock (tracker/store/locks.py): a topic's run or the e-mail; the row exists while it is held."""

    __tablename__ = "instance_lock"
    __table__: ClassVar[Table]

    name: str = Field(primary_key=True)
    token: str  # this holder's random id: a takeover or release must match it
    host: str
    pid: int
    boot_id: str | None = None  # Linux's per-boot id: a pid recorded before a reboot says nothing now
    started_at: datetime
    heartbeat_at: datetime


class ChangeCheck(SQLModel, table=True):
    """How far a topic's search of modified records [mdat] has looked (tracker/runs/watch.py)."""

    __tablename__ = "change_check"
    __table__: ClassVar[Table]

    topic: str = Field(primary_key=True)
    checked_through: date
    run_id: int | None = Field(default=None, foreign_key="run.id")
    updated_at: datetime


class StatusEvent(SQLModel, table=True):
    """A change PubMed made to a stored paper: retraction, expression of concern, erratum, update, deletion."""

    __tablename__ = "status_event"
    __table__: ClassVar[Table]
    __table_args__ = (UniqueConstraint("pmid", "kind", "notice_pmid"),)

    id: int | None = Field(default=None, primary_key=True)
    pmid: int = Field(foreign_key="paper.pmid", index=True)
    kind: str  # retraction, concern, erratum, update, republication, deleted
    notice_pmid: int | None = None  # the notice's record (or, for a merged record, the one that replaced it)
    detail: str = ""
    detected_at: datetime = Field(index=True)
    run_id: int | None = Field(default=None, foreign_key="run.id")


class PaperRevision(SQLModel, table=True):
    """A paper's previous record, kept when a refetched version brought status events."""

    __tablename__ = "paper_revision"
    __table__: ClassVar[Table]

    id: int | None = Field(default=None, primary_key=True)
    pmid: int = Field(foreign_key="paper.pmid", index=True)
    xml_gz: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    replaced_at: datetime
    run_id: int | None = Field(default=None, foreign_key="run.id")


class EventDelivery(SQLModel, table=True):
    """The ledger of status events told to a recipient: each goes to each recipient once."""

    __tablename__ = "event_delivery"
    __table__: ClassVar[Table]

    recipient: str = Field(primary_key=True)
    event_id: int = Field(primary_key=True, foreign_key="status_event.id")
    message_id: str = Field(foreign_key="outbox.message_id", index=True)
    delivered_at: datetime


class JobLease(SQLModel, table=True):
    """Which scheduler runs a job's run due at `due_at` (tracker/store/leases.py): one row per job and due time."""

    __tablename__ = "job_lease"
    __table__: ClassVar[Table]

    job: str = Field(primary_key=True)
    due_at: datetime = Field(primary_key=True)  # the run's scheduled time, UTC
    status: str = "running"  # running, released (stopped half-way: take it over at once), done
    outcome: str | None = None  # ok, failed, skipped (another process was running the topic)
    token: str  # the holding scheduler's id
    host: str
    pid: int
    attempts: int = 1  # 2 and more: taken over from a scheduler that died or stopped
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None = None


class Account(SQLModel, table=True):
    """A person who may use the web app in team mode (tracker/web): a reviewer, or an admin."""

    __tablename__ = "account"
    __table__: ClassVar[Table]

    name: str = Field(primary_key=True)  # also the reviewer name their decisions carry
    password_hash: str  # Argon2id, in its own encoded form (tracker/web/accounts.py)
    role: str = "reviewer"  # reviewer, admin
    created_at: datetime
    password_changed_at: datetime


class WebSession(SQLModel, table=True):
    """A signed-in browser (tracker/web): the row exists while the session lasts; logging out deletes it."""

    __tablename__ = "web_session"
    __table__: ClassVar[Table]

    # The SHA-256 of the cookie's random value: the cookie itself is never stored.
    id: str = Field(primary_key=True)
    account: str | None = Field(default=None, index=True)  # None: personal mode, no accounts
    reviewer: str
    role: str  # reviewer, admin
    csrf: str  # the form token every state-changing request of this session must carry
    created_at: datetime
    expires_at: datetime = Field(index=True)
    last_seen_at: datetime


class FeedToken(SQLModel, table=True):
    """The key in a person's feed addresses (tracker/web/feeds.py): feed readers cannot log in, so the address carries
    it. It reads topic feeds and nothing else; revoking it deletes the row, and a new one replaces the old."""

    __tablename__ = "feed_token"
    __table__: ClassVar[Table]

    id: str = Field(primary_key=True)  # the SHA-256 of the token: the token itself is never stored
    account: str | None = Field(default=None, index=True)  # None: personal mode's, while there are no accounts
    created_at: datetime


class LoginFailure(SQLModel, table=True):
    """Failed logins counted per user name and per address, so that the delay after them survives a restart."""

    __tablename__ = "login_failure"
    __table__: ClassVar[Table]

    key: str = Field(primary_key=True)  # "user:NAME" or "address:IP"
    failures: int = 0  # since the last successful login (or the last quiet spell)
    last_failed_at: datetime


class RelevanceScore(SQLModel, table=True):
    """A paper's relevance in a topic: the topic's model's score in (0, 1), higher is more likely included.

    Only numbers are stored, never a model: a model is retrained from the topic's decisions when the scores
    are refreshed (tracker/review/relevance.py), so nothing read back from the database can run code.
    """

    __table__: ClassVar[Table]
    __tablename__ = "relevance_score"
    __table_args__ = (Index("ix_relevance_score_topic_score", "topic", "score"),)

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid")
    score: float


class RankingState(SQLModel, table=True):
    """How a topic's relevance scores were made: the decisions they learned from and when."""

    __table__: ClassVar[Table]
    __tablename__ = "ranking_state"

    topic: str = Field(primary_key=True)
    included: int = 0  # the inclusions and exclusions the model was trained on (maybe left out)
    excluded: int = 0
    decision_mark: int = 0  # the topic's newest decision id when trained: a newer one makes the scores stale
    papers: int = 0  # papers scored
    # The lowest score in the top fifth of the topic's undecided papers: papers at or above it are marked "likely
    # relevant" (the fifth is the share the ranking benchmark measures recall in).
    likely_from: float = 1.0
    trained_at: datetime
    seconds: float = 0.0  # how long reading, training and scoring took


class Suggestion(SQLModel, table=True):
    """A paper PubMed links to a topic's included papers or seeds that the topic does not hold (tracker/runs/suggest.py).

    `ways` is how it was found, "; "-joined in the order of tracker/store/suggestions.py WAYS ("similar", "cites",
    "cited by"), and `seeds` which seeds led to it, by way ({"similar": [PMID, ...]}). A pending suggestion waits for
    the reader; an added one joined the topic (its membership's source is "suggestion"); a dismissed one is never
    suggested to the topic again. The paper is stored like any other; `relevance` is the topic's model's score.
    """

    __tablename__ = "suggestion"
    __table__: ClassVar[Table]
    __table_args__ = (Index("ix_suggestion_topic_status", "topic", "status"),)

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, foreign_key="paper.pmid")
    status: str = "pending"  # pending, added, dismissed
    ways: str = ""
    seeds: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # PubMed's similarity scores summed over the seeds that found it, when they were asked with scores.
    similarity: int | None = None
    relevance: float | None = None
    first_found_at: datetime
    last_found_at: datetime
    run_id: int | None = Field(default=None, foreign_key="run.id")  # the run whose pass first found it
    decided_at: datetime | None = None
    decided_by: str | None = None


class SuggestionState(SQLModel, table=True):
    """How far a topic's suggestions have looked: the last day whose new links were asked, and the last refresh."""

    __tablename__ = "suggestion_state"
    __table__: ClassVar[Table]

    topic: str = Field(primary_key=True)
    checked_through: date
    refreshed_at: datetime | None = None
    updated_at: datetime


class SuggestionSeed(SQLModel, table=True):
    """A seed whose links were asked once without a date limit: later runs ask only for what is new to it."""

    __tablename__ = "suggestion_seed"
    __table__: ClassVar[Table]

    topic: str = Field(primary_key=True)
    pmid: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # not always a stored paper
    asked_at: datetime
