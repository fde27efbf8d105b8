"""Views shared by every face: what the CLI, the scheduler's logs and the web app show.

A view reads the store and the topic files and returns plain data (dataclasses of values and records); it
never prints or renders. The CLI formats a view as a table, the web app as a page, from the same call, so the
two always agree. status.py: topics, runs and health; topic.py: a topic's papers a page at a time; paper.py: one
paper; screen.py: the screening page.
"""
