"""`pip install .` gives a working tracker: the wheel carries the default topics and templates."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from tests.conftest import REPO, cli_env
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml


@pytest.mark.slow
def test_installed_wheel_inits_a_home_fetches_and_writes_digests(tmp_path, fake_eutils):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = list(wheels.glob("tracker-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    created = date.today() - timedelta(days=3)
    fake_eutils.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=created), created=created) for p in (1, 2)])

    home = tmp_path / "library"
    # Run from an empty folder with only the installed copy on the path: nothing comes from the checkout.
    env = {**cli_env(home, fake_eutils.url), "PYTHONPATH": str(target)}

    def tracker(*args):
        return subprocess.run([sys.executable, "-m", "tracker", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    probe = subprocess.run([sys.executable, "-c", "import tracker; print(tracker.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(target)), probe.stdout
    assert tracker("init", str(home)).returncode == 0
    assert len(os.listdir(home / "queries")) == 9
    result = tracker("run", "cesarean")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cesarean: 2 new, 2 matched, ")
    assert sorted(p.suffix for p in (home / "reports" / "cesarean").iterdir()) == [".html", ".md", ".xml"]
