"""What the tracker writes for people and programs: rendering and its templates (render.py, templates/), the
digests (digest.py) and their charts (charts.py), CSV, RIS and Excel exports (export.py, spreadsheet.py), and
the weekly e-mail (mail/)."""
