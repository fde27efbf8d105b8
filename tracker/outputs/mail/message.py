"""The message: one recipient's mail, built completely (charts, CSV) before anything is sent.

multipart/mixed [ multipart/related [ multipart/alternative [ text/plain, text/html ], image/png (one
chart per topic, referenced from the HTML as cid:) ], text/csv ]. The HTML is tables with inline styles
only (role="presentation", 640 px wide), which Outlook and Gmail both render; every record text is
escaped. The CSV (tracker/outputs/export.py columns) is named norepinephrine-papers-<Monday>.csv and is left out
when there is no paper to list. Subject: "Norepinephrine literature, week of <Monday>: 14 new papers in
4 topics", counting the topics that have new papers, or "…: no new papers in 4 topics", counting every
topic the mail covers; "; 2 updates to papers sent before" is added when it tells status events.

A topic showing more than its `max_per_digest` papers shows the strongest ones first and says "N new,
M shown"; all N are in the attached CSV. When nothing is new the mail still goes out (a heartbeat),
listing each topic with its last run, so a silent week can be told from a broken tracker. A topic whose
last run failed is shown in red (#b00020) with its error, in the HTML and (marked "!!") in the plain
text, and so are the query's health flags (tracker/runs/watch.py). The mail opens with "Updates to papers
you already received"; a retracted paper is marked RETRACTED.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr

from tracker.errors import SendFailure
from tracker.outputs.digest import BASELINE_SHOWN, PHRASES, TopicDigest, build_topic_digest
from tracker.outputs.mail.audience import Mailing
from tracker.outputs.render import render
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
class Fitted:
    """How a message was made to fit its size limit: what it carries, and what it left out (said in its body)."""

    attachment: str | None  # "csv", "zip" or None
    charts: bool
    max_items: int | None  # a lower cap than the topics' own, when even that was needed
    note: str = ""


def build_message(store: Store, mailing: Mailing, *, sender: str, now: datetime | None = None,
                  chart_cache: dict[str, bytes] | None = None, quiet_weeks: int = DEFAULT_QUIET_WEEKS,
                  max_bytes: int | None = None) -> EmailMessage:
    """The complete message for `mailing`, From `sender` (an address, optionally with a display name).

    `chart_cache` (slug to PNG) lets one run draw each topic's chart once for all its recipients;
    `quiet_weeks` is TRACKER_QUIET_WEEKS, for the topics' health flags. `max_bytes` is the largest message
    the run may send: the CSV is zipped, then left out, then the charts, then fewer papers are shown, until it
    fits; the body says what was left out and how to get it. SendFailure when even that is too large.
    """
    from tracker.outputs.charts import chart_png  # matplotlib takes a second to import: only when a message is built
    from tracker.outputs.export import UTF8_BOM, csv_bytes

    now = as_utc(now) if now is not None else utcnow()
    week = week_of(now)
    digests = [
        build_topic_digest(store, topic, pmids=mailing.pmids_by_topic.get(topic.slug, ()), until=mailing.until,
                           max_items=topic.max_per_digest or DEFAULT_MAX_PER_DIGEST,
                           full_report=f"the attached {csv_filename(week)}", quiet_weeks=quiet_weeks,
                           suggested_since=mailing.since)
        for topic in mailing.topics
    ]
    new = list(dict.fromkeys(pmid for digest in digests for pmid in digest.new_pmids))
    updates = (with_included_first(store, mailing.topics, list_events(store, ids=mailing.event_ids))
               if mailing.event_ids else ())
    baselines = [digest for digest in digests if digest.baseline]
    subject = make_subject(week, len(new), sum(1 for d in digests if d.total_new), len(digests), len(updates),
                           baseline=sum(d.baseline.papers for d in baselines if d.baseline))
    domain = parseaddr(sender)[1].rpartition("@")[2]
    chart_cache = {} if chart_cache is None else chart_cache
    for topic in mailing.topics:
        if topic.slug not in chart_cache:
            chart_cache[topic.slug] = chart_png(store, topic.slug, end=now)
    charts = {topic.slug: (make_msgid(idstring=f"chart.{topic.slug}", domain=domain), chart_cache[topic.slug])
              for topic in mailing.topics}
    table = UTF8_BOM + csv_bytes(store, new, list(mailing.topics)) if new else b""  # opened in Excel: the BOM
    message_id = make_msgid(domain=domain)

    def assemble(fit: Fitted) -> EmailMessage:
        shown = digests if fit.max_items is None else [
            build_topic_digest(store, topic, pmids=mailing.pmids_by_topic.get(topic.slug, ()), until=mailing.until,
                               max_items=min(fit.max_items, topic.max_per_digest or DEFAULT_MAX_PER_DIGEST),
                               full_report=f"the attached {csv_filename(week)}" if fit.attachment else
                               "'tracker export' (see the note above)", quiet_weeks=quiet_weeks,
                               suggested_since=mailing.since)
            for topic in mailing.topics]
        name = csv_filename(week) if fit.attachment == "csv" else zip_filename(week)
        context = dict(
            heading=f"{MAIL_TITLE}, week of {week.isoformat()}", subject=subject,
            intro=describe_intro(shown, len(new), attached={"csv": "CSV", "zip": "zipped CSV"}.get(fit.attachment or "")),
            updates=updates, digests=shown, recipient=mailing.recipient,
            attachment=name if new and fit.attachment else None, total=len(new), note=fit.note,
            charts={slug: cid[1:-1] for slug, (cid, _) in charts.items()} if fit.charts else {},
            failed_color=FAILED_COLOR, chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, **PHRASES,
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

    for fit in fitting_steps(len(new), len(table), max_bytes, week):
        message = assemble(fit)
        if max_bytes is None or len(bytes(message)) <= max_bytes:
            return message
    raise SendFailure(f"the message would be {len(bytes(message)):,} bytes even without its CSV and charts and with one "
                      f"paper a topic, over the limit of {max_bytes:,} bytes: raise TRACKER_MAIL_MAX_BYTES (or [mail] "
                      "max_bytes), or ask the mail server's administrator for a larger limit")


def fitting_steps(papers: int, csv_size: int, max_bytes: int | None, week: date):
    """What to try, in order, until the message fits (see `build_message`)."""
    yield Fitted("csv", True, None)
    if max_bytes is None:
        return
    yield Fitted("zip", True, None, note=f"The CSV is zipped ({zip_filename(week)}) to keep this message under "
                                          f"{describe_bytes(max_bytes)}.")
    left_out = (f"The CSV of all {papers} papers ({describe_bytes(csv_size)}) is left out: with it this message would "
                f"pass the limit of {describe_bytes(max_bytes)} (TRACKER_MAIL_MAX_BYTES, or the mail server's). "
                "Run 'tracker export --since <the week's Monday> -o papers.xlsx' for it.")
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


def describe_intro(digests: Sequence[TopicDigest], total: int, *, attached: str | None = "the attached CSV") -> str:
    baselines = [d for d in digests if d.baseline]
    if baselines:
        papers = sum(d.baseline.papers for d in baselines if d.baseline)
        first = (f"First run of {plural(len(baselines), 'topic')}: {papers:,} papers their queries match are now "
                 "stored as the baseline, and each topic shows its strongest; from next week on you get what is new.")
        return first + " " + describe_news(digests, total, attached) if total else first
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
           "build_message", "describe_intro", "Fitted", "fitting_steps", "zipped"]
