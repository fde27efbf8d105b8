"""Screening a topic's papers for a review: the states decisions add up to and their rules (states.py), deciding
and listing (screening.py), importing decisions (importing.py), PRISMA counts (prisma.py), and the relevance
order learned from a topic's decisions (relevance.py over the model in ranking/)."""
