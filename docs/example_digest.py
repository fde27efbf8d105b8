"""Render the example digest shown in the README (docs/digest-example.png).

The papers below are invented examples in PubMed's shape (PMIDs 990000001 and up do not exist);
they only show what a digest looks like. Run: python docs/example_digest.py [OUTPUT_DIR]
(needs Debian's chromium for the screenshot; without it only the HTML is written).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tracker.ncbi.pubmed import AbstractSection, Author, Paper
from tracker.outputs.charts import chart_png
from tracker.outputs.digest import build_topic_digest, render_html
from tracker.store import open_store
from tracker.store.papers import save_papers
from tracker.store.runs import RunCounts, finish_run, start_run
from tracker.topics import Topic

TOPIC = Topic(slug="cesarean", title="Norepinephrine in cesarean section under spinal anesthesia",
              query='("Norepinephrine"[Mesh] OR noradrenaline[tiab]) AND ("Cesarean Section"[Mesh] OR caesarean[tiab])')

EXAMPLES = [
    ("Prophylactic norepinephrine infusion versus phenylephrine for spinal hypotension during caesarean "
     "delivery: a systematic review and meta-analysis", ("Meta-Analysis", "Systematic Review"), "PMC0000001"),
    ("Intermittent norepinephrine boluses compared with variable-rate infusion at caesarean section: "
     "a randomised controlled trial", ("Randomized Controlled Trial",), None),
    ("Effective dose of prophylactic norepinephrine infusion in women with preeclampsia: an up-and-down "
     "sequential allocation study", ("Clinical Trial",), None),
    ("Norepinephrine for the management of maternal hypotension: a narrative review", ("Review",), "PMC0000002"),
    ("Reactive hypertension after norepinephrine bolus in a parturient with twin pregnancy",
     ("Case Reports",), None),
]


def build(output: Path) -> Path:
    store = open_store(f"sqlite:///{output / 'example.sqlite3'}")
    run = start_run(store, "cesarean", kind="fetch", query=TOPIC.query, window_start=None, window_end=date.today())
    papers = []
    for index, (title, types, pmcid) in enumerate(EXAMPLES):
        created = date.today() - timedelta(days=index + 1)
        papers.append(Paper(
            pmid=990000001 + index, kind="article", title=title,
            abstract_sections=(AbstractSection("BACKGROUND", "BACKGROUND", "Spinal anaesthesia for caesarean delivery "
                                               "often causes hypotension."),
                               AbstractSection("CONCLUSIONS", "CONCLUSIONS", "Norepinephrine maintained blood pressure "
                                               "with a higher maternal heart rate and similar neonatal outcomes.")),
            authors=(Author("Example", "Anna", "A"), Author("Sample", "Bo", "B"), Author("Muster", "Max", "M"),
                     Author("Placeholder", "Li", "L")),
            journal="Example Journal of Obstetric Anesthesia",
            pub_date_text="2026 Nov" if index != 2 else "2019 May",
            pub_date=date(2026, 11, 1) if index != 2 else date(2019, 5, 1),
            doi=f"10.0000/example.{index}", pmcid=pmcid, publication_types=("Journal Article", *types),
            history=(("pubmed", created.isoformat()), ("entrez", (created if index != 2 else date(2019, 6, 1)).isoformat())),
        ))
    save_papers(store, papers, topic="cesarean", run_id=run.id)
    save_papers(store, papers[:2], topic="prophylactic", run_id=run.id)
    finish_run(store, run.id, RunCounts(count=5, matched=5, new_papers=5, fetched=5, requests=2))
    now = datetime.now(timezone.utc)
    digest = build_topic_digest(store, TOPIC, since=now - timedelta(days=7), until=now + timedelta(minutes=1))
    html = render_html([digest], chart_pngs={"cesarean": chart_png(store, "cesarean", end=now)})
    path = output / "digest-example.html"
    path.write_text(html, encoding="utf-8")
    return path


def screenshot(html: Path, png: Path) -> bool:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        f"--screenshot={png}", "--window-size=1000,1500", html.as_uri()],
                       check=True, capture_output=True, timeout=60)
    return True


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    with tempfile.TemporaryDirectory() as work:
        page = build(Path(work))
        if screenshot(page, out / "digest-example.png"):
            print(f"wrote {out / 'digest-example.png'}")
        else:
            shutil.copyfile(page, out / "digest-example.html")
            print(f"wrote {out / 'digest-example.html'} (install chromium for a screenshot)")
