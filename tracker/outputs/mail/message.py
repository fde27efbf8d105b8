"""The message: one recipient's mail, built completely (charts, CSV) before anything is sent.

multipart/mixed [ multipart/related [ multipart/alternative [ text/plain, text/html ], image/png (one
chart per topic, referenced from the HTML as cid:) ], text/csv ]. The HTML is tables with inline styles
only (role="presentation", 640 px wide), which Outlook and Gmail both render; every record text is
escaped. The CSV (tracker/outputs/export.py columns) is named norepinephrine-papers-<Monday>.csv and is left out
when there is no paper to list. Subject: "Norepinephrine literature, week of <Monday>: 14 new papers in
4 topics", counting the topics that have new papers, or "…: no new papers in 4 topics", counting every
topic the mail covers; "; 2 updates to papers sent before" is added when it tells status events.

A topic showing more than its `max_per_digest` papers shows the strongest ones first and says "N new,
M shown"; all N are in the attached CSV. A topic's baseline (the papers its first run stored) is summed up
in one line, with its strongest papers listed only when the topic has nothing newer to show. When nothing
is new the mail still goes out (a heartbeat, once a week: tracker/outputs/mail/audience.py), listing each
topic with its last run, so a silent week can be told from a broken tracker. A topic whose last run failed
is shown in red (#b00020), in the HTML and (marked "!!") in the plain text, and so are the query's health
flags (tracker/runs/watch.py). The mail opens with "Updates to papers you already received"; a retracted
paper is marked RETRACTED.

For colleagues. Readers run no command: the body names no command and no setting. What the sender can do
about a failed run, a query that needs a look or a CSV left out for its size goes to the sender's console
(`BuiltMessage.sender_notes`). With `[web] public_url` set, each topic and paper links to the web app.
The counts the console, the subject and the body give are the same numbers: each paper once.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr

from tracker.errors import SendFailure
from tracker.outputs.digest import (
    BASELINE_SHOWN,
    PHRASES,
    TopicDigest,
    build_topic_digest,
    describe_baseline,
    describe_empty,
    describe_run,
)
from tracker.outputs.mail.audience import Mailing
from tracker.outputs.render import moment, render
from tracker.review.screening import with_included_first
from tracker.runs.watch import DEFAULT_QUIET_WEEKS
from tracker.store import Store
from tracker.store.changes import list_events
from tracker.text import as_utc, plural, utcnow

MAIL_TITLE = "Norepinephrine literature"
# Papers a topic shows in the e-mail's body when its file sets no max_per_digest; all of them are in the CSV.
DEFAULT_MAX_PER_DIGEST = BASELINE_SHOWN
FAILED_COLOR = "#b00020"
CHART_WIDTH, CHART_HEIGHT = 592, 186  # the 700 x 220 chart scaled into the 640 px column less its padding
# Python folds some headers a little over 78 characters (the subject) onto a line of their own, which
# parsers then read with a leading space; RFC 5322 allows 998. Parts keep 78, which their encoders need.
MESSAGE_POLICY = SMTP_POLICY.clone(max_line_length=998)


def week_of(now: datetime) -> date:
    """The Monday of `now`'s week (UTC)."""
    day = as_utc(now).date()
    return day - timedelta(days=day.weekday())


def make_subject(week: date, papers: int, topics_with_papers: int, topics: int, updates: int = 0, *,
                 baseline: int = 0) -> str:
    head = f"{MAIL_TITLE}, week of {week.isoformat()}"
    if baseline and not papers:
        subject = f"{head}: baseline of {baseline:,} papers in {plural(topics, 'topic')}"
    elif not papers:
        subject = f"{head}: no new papers in {plural(topics, 'topic')}"
    else:
        subject = f"{head}: {plural(papers, 'new paper')} in {plural(topics_with_papers, 'topic')}"
        if baseline:
            subject += f" and a baseline of {baseline:,}"
    return f"{subject}; {plural(updates, 'update')} to papers sent before" if updates else subject


def csv_filename(week: date) -> str:
    return f"norepinephrine-papers-{week.isoformat()}.csv"


@dataclass(frozen=True)
class BuiltMessage:
    """A complete message and what it carries, counted once for the console, the subject and the body."""

    message: EmailMessage
    new_papers: int  # papers listed as new (each once, whatever its topics)
    baseline_papers: int  # papers of a baseline summed up, not counted among the new
    updates: int  # status events told
    sender_notes: tuple[str, ...] = ()  # what the sender can do something about (never in the body)


@dataclass(frozen=True)
class Fitted:
    """How a message was made to fit its size limit: what it carries, and what it left out (said in its body)."""

    attachment: str | None  # "csv", "zip" or None
    charts: bool
    max_items: int | None  # a lower cap than the topics' own, when even that was needed
    note: str = ""


def build_message(store: Store, mailing: Mailing, *, sender: str, now: datetime | None = None,
                  chart_cache: dict[str, bytes] | None = None, quiet_weeks: int = DEFAULT_QUIET_WEEKS,
                  max_bytes: int | None = None, public_url: str | None = None) -> BuiltMessage:
    """The complete message for `mailing`, From `sender` (an address, optionally with a display name).

    `chart_cache` (slug to PNG) lets one run draw each topic's chart once for all its recipients;
    `quiet_weeks` is TRACKER_QUIET_WEEKS, for the topics' health flags. `max_bytes` is the largest message
    the run may send: the CSV is zipped, then left out, then the charts, then fewer papers are shown, until it
    fits; the body says what was left out, the sender's notes what to set. SendFailure when even that is too large.
    `public_url` is the web app's address (`[web] public_url`): topics and papers link there.
    """
    from tracker.outputs.charts import chart_png  # matplotlib takes a second to import: only when a message is built
    from tracker.outputs.export import UTF8_BOM, csv_bytes

    now = as_utc(now) if now is not None else utcnow()
    week = week_of(now)

    def digests_of(cap: int | None, full_report: str) -> list[TopicDigest]:
        return [summed_up(build_topic_digest(
            store, topic, pmids=mailing.pmids_by_topic.get(topic.slug, ()), until=mailing.until,
            max_items=min(cap, topic.max_per_digest or DEFAULT_MAX_PER_DIGEST) if cap else
            topic.max_per_digest or DEFAULT_MAX_PER_DIGEST,
            full_report=full_report, quiet_weeks=quiet_weeks, suggested_since=mailing.since)) for topic in mailing.topics]

    digests = digests_of(None, f"the attached {csv_filename(week)}")
    new = list(dict.fromkeys(pmid for digest in digests for pmid in digest.new_pmids))
    baseline = {pmid for digest in digests if digest.baseline for pmid in digest.baseline.pmids} - set(new)
    updates = (with_included_first(store, mailing.topics, list_events(store, ids=mailing.event_ids))
               if mailing.event_ids else ())
    subject = make_subject(week, len(new), sum(1 for d in digests if d.total_new), len(digests), len(updates),
                           baseline=len(baseline))
    domain = parseaddr(sender)[1].rpartition("@")[2]
    chart_cache = {} if chart_cache is None else chart_cache
    for topic in mailing.topics:
        if topic.slug not in chart_cache:
            chart_cache[topic.slug] = chart_png(store, topic.slug, end=now)
    charts = {topic.slug: (make_msgid(idstring=f"chart.{topic.slug}", domain=domain), chart_cache[topic.slug])
              for topic in mailing.topics}
    table = UTF8_BOM + csv_bytes(store, new, list(mailing.topics)) if new else b""  # opened in Excel: the BOM
    message_id = make_msgid(domain=domain)
    phrases = reader_phrases(public_url)
    notes = sender_notes(digests)

    def assemble(fit: Fitted) -> EmailMessage:
        shown = digests if fit.max_items is None and fit.attachment else digests_of(
            fit.max_items, f"the attached {csv_filename(week)}" if fit.attachment else
            (f"the web app ({public_url})" if public_url else "the tracker's full list (see the note above)"))
        name = csv_filename(week) if fit.attachment == "csv" else zip_filename(week)
        context = dict(
            heading=f"{MAIL_TITLE}, week of {week.isoformat()}", subject=subject,
            intro=describe_intro(shown, len(new), attached={"csv": "CSV", "zip": "zipped CSV"}.get(fit.attachment or ""),
                                 baseline=len(baseline)),
            updates=updates, digests=shown, recipient=mailing.recipient,
            attachment=name if new and fit.attachment else None, total=len(new), note=fit.note,
            charts={slug: cid[1:-1] for slug, (cid, _) in charts.items()} if fit.charts else {},
            failed_color=FAILED_COLOR, chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, web_url=public_url,
            **phrases,
        )
        body = MIMEPart(policy=SMTP_POLICY)
        body.set_content(render("mail.txt.j2", **context), cte="quoted-printable")
        body.add_alternative(render("mail.html.j2", **context), subtype="html", cte="quoted-printable")
        related = MIMEPart(policy=SMTP_POLICY)
        related.make_related()
        related.attach(body)
        if fit.charts:
            for slug, (cid, png) in charts.items():
                image = MIMEPart(policy=SMTP_POLICY)
                image.set_content(png, "image", "png", disposition="inline", filename=f"chart-{slug}.png", cid=cid)
                related.attach(image)
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["From"] = sender
        message["To"] = mailing.recipient
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id
        message["MIME-Version"] = "1.0"
        message["Auto-Submitted"] = "auto-generated"
        # Outlook's out-of-office and read-receipt replies are not wanted by an unattended sender.
        message["X-Auto-Response-Suppress"] = "All"
        message.make_mixed()
        # typeshed lets an EmailMessage attach only EmailMessages; the parts are plain MIME parts.
        mixed: MIMEPart = message
        mixed.attach(related)
        if new and fit.attachment == "csv":
            part = MIMEPart(policy=SMTP_POLICY)
            part.set_content(table, "text", "csv", disposition="attachment", filename=name, params={"charset": "utf-8"})
            mixed.attach(part)
        elif new and fit.attachment == "zip":
            part = MIMEPart(policy=SMTP_POLICY)
            part.set_content(zipped(table, csv_filename(week)), "application", "zip", disposition="attachment",
                             filename=name)
            mixed.attach(part)
        return message

    for fit in fitting_steps(len(new), len(table), max_bytes, week, public_url=public_url):
        message = assemble(fit)
        if max_bytes is None or len(bytes(message)) <= max_bytes:
            if fit.attachment != "csv" and new:
                notes += (f"the message to {mailing.recipient} {describe_fit(fit)} to stay under "
                          f"{describe_bytes(max_bytes or 0)}: raise TRACKER_MAIL_MAX_BYTES ([mail] max_bytes), or "
                          "ask the mail server's administrator for a larger limit, to attach the whole CSV",)
            return BuiltMessage(message, len(new), len(baseline), len(updates), tuple(dict.fromkeys(notes)))
    raise SendFailure(f"the message would be {len(bytes(message)):,} bytes even without its CSV and charts and with one "
                      f"paper a topic, over the limit of {max_bytes:,} bytes: raise TRACKER_MAIL_MAX_BYTES (or [mail] "
                      "max_bytes), or ask the mail server's administrator for a larger limit")


def summed_up(digest: TopicDigest) -> TopicDigest:
    """A topic with new papers besides its baseline sums the baseline up in one line: its strongest papers are listed
    only when nothing newer is (a topic's first week)."""
    if digest.baseline is None or not digest.total_new:
        return digest
    return replace(digest, baseline=replace(digest.baseline, entries=(), tiers=()))


def describe_fit(fit: Fitted) -> str:
    if fit.attachment == "zip":
        return "has its CSV zipped"
    what = "leaves out its CSV" + (" and charts" if not fit.charts else "")
    return what + (f" and shows {fit.max_items} papers a topic" if fit.max_items else "")


def sender_notes(digests: Sequence[TopicDigest]) -> tuple[str, ...]:
    """What the sender can do about what the readers are only told: a failed or never-run topic, a query to check."""
    notes = []
    for digest in digests:
        slug, run = digest.topic.slug, digest.last_run
        if run is None:
            notes.append(f"{slug} has never run: its readers are told its first papers come later; run "
                         f"'tracker run {slug}'")
        elif run.status == "failed":
            error = (run.error or "no error recorded").removeprefix(f"topic '{slug}': ")
            notes.append(f"{slug}: its last run failed ({error}); its readers are told their list may be incomplete: "
                         f"run 'tracker run {slug}' to retry")
        notes += [f"{slug}: {flag.message}" for flag in digest.health if flag.message != flag.for_readers]
    return tuple(notes)


# -- the phrases readers see: no command, no setting ------------------------------------------------

def reader_phrases(public_url: str | None) -> dict:
    """The digest's phrases (tracker/outputs/digest.py PHRASES) as the e-mail's readers need them."""

    def topic_page(digest: TopicDigest) -> str | None:
        return f"{public_url}topics/{digest.topic.slug}" if public_url else None

    def run(digest: TopicDigest) -> str:
        last = digest.last_run
        if last is None:
            return "not searched yet: its first papers come in a later message"
        if last.status == "failed":
            return (f"the search of PubMed failed at {moment(last.finished_at or last.started_at)}: papers it would "
                    "have found come in a later message, once a search succeeds")
        return describe_run(digest)

    def empty(digest: TopicDigest) -> str:
        last = digest.last_run
        if last is None:
            return "No papers yet: this topic has not been searched yet."
        if last.status == "failed":
            return (f"No new papers in this period, but the search of PubMed failed at "
                    f"{moment(last.finished_at or last.started_at)}: this list may be incomplete until one succeeds.")
        return describe_empty(digest)

    def baseline(digest: TopicDigest) -> str:
        base = digest.baseline
        if base is None or not digest.total_new:
            return describe_baseline(digest)
        matched = f"matched since {base.since.year}" if base.since else "matched in PubMed"
        return (f"Baseline: {plural(base.papers, 'paper')} {matched} when this topic started (not listed; "
                f"what the topic found since follows)")

    def baseline_shown(digest: TopicDigest) -> str:
        base, page = digest.baseline, topic_page(digest)
        if base is None:
            return ""
        every = f"; all {base.papers:,} are on the topic's page: {page}" if page else ""
        return f"The strongest {len(base.entries)} by evidence tier{every}"

    return dict(PHRASES, describe_run=run, describe_empty=empty, describe_baseline=baseline,
                describe_baseline_shown=baseline_shown, topic_page=topic_page,
                paper_page=(lambda pmid: f"{public_url}papers/{pmid}") if public_url else (lambda pmid: None))


def fitting_steps(papers: int, csv_size: int, max_bytes: int | None, week: date, *, public_url: str | None = None):
    """What to try, in order, until the message fits (see `build_message`); each note is for the readers."""
    yield Fitted("csv", True, None)
    if max_bytes is None:
        return
    yield Fitted("zip", True, None, note=f"The CSV is zipped ({zip_filename(week)}) to keep this message under "
                                          f"{describe_bytes(max_bytes)}.")
    where = (f"the web app lists them all: {public_url}" if public_url else
             "whoever sends these e-mails can send you the list")
    left_out = (f"The CSV of all {plural(papers, 'paper')} ({describe_bytes(csv_size)}) is left out: with it this "
                f"message would pass the mail server's limit of {describe_bytes(max_bytes)}; {where}.")
    yield Fitted(None, True, None, note=left_out)
    yield Fitted(None, False, None, note=left_out + " The charts are left out too.")
    cap = DEFAULT_MAX_PER_DIGEST
    while cap > 1:
        cap //= 2
        yield Fitted(None, False, cap, note=left_out + f" The charts are left out too, and each topic shows its "
                                                       f"{cap} strongest papers.")


def zipped(data: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        # A fixed time: the same papers give the same bytes.
        archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                         compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def zip_filename(week: date) -> str:
    return f"norepinephrine-papers-{week.isoformat()}.zip"


def describe_bytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} kB"


def describe_news(digests: Sequence[TopicDigest], total: int, attached: str | None) -> str:
    with_papers = sum(1 for d in digests if d.total_new)
    where = (f"the {plural(len(digests), 'topic')} you follow" if with_papers == len(digests)
             else f"{with_papers} of the {plural(len(digests), 'topic')} you follow")
    listed = f"; the attached {attached} lists all {total}" if attached else ""
    return f"{plural(total, 'new paper')} in {where}. The strongest evidence comes first in each topic{listed}."


def describe_intro(digests: Sequence[TopicDigest], total: int, *, attached: str | None = "the attached CSV",
                   baseline: int = 0) -> str:
    """The message's first sentence. `baseline` counts the baselines' papers once each (and none listed as new)."""
    baselines = [d for d in digests if d.baseline]
    if baselines and not total:
        return (f"First run of {plural(len(baselines), 'topic')}: {plural(baseline, 'paper')} their queries match "
                f"{'is' if baseline == 1 else 'are'} now stored as the baseline, and each topic shows its strongest; "
                "from next week on you get what is new.")
    if baselines:
        return (describe_news(digests, total, attached) + f" Each topic's baseline ({plural(baseline, 'paper')} in all, "
                "stored when it started) is summed up in one line.")
    if total:
        return describe_news(digests, total, attached)
    troubled = [d for d in digests if d.last_run is None or d.last_run.status != "succeeded"]
    flagged = [d for d in digests if d.health]
    if not troubled and not flagged:
        return "No new papers this week: every query ran and found nothing new."
    if not troubled:
        return (f"No new papers this week, but the query of {plural(len(flagged), 'topic')} needs a look "
                "(marked below): the quiet may be a fault, not an empty week.")
    return (f"No new papers this week, but {plural(len(troubled), 'topic')} did not run cleanly "
            "(marked below): the quiet may be a fault, not an empty week.")


__all__ = ["MAIL_TITLE", "DEFAULT_MAX_PER_DIGEST", "week_of", "make_subject", "csv_filename", "zip_filename",
           "build_message", "BuiltMessage", "describe_intro", "Fitted", "fitting_steps", "zipped", "reader_phrases",
           "sender_notes"]
