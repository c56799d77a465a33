"""`manage.py bench`: generate an org at scale in a database of its own, then measure it.

database.py creates and switches to the bench database; generate.py fills it with COPY and
set-based SQL; pages.py times pages against hand-written SQL floors; writes.py times the
roll-up, audit appends and the bulk invite; report.py prints the table.
"""
