"""The database side of the go-live: backup, clone test, migration, verification, restore.

The order the go-live runs them in, each a step the runner journals::

    check_free_space -> backup -> verify_backup -> clone_test -> migrate (expand) -> verify

Contract migrations are not part of it: they run on their own after blue is retired.
golive never imports the service: SQL over psycopg, pg_dump/pg_restore and the service's own
migration command as subprocesses. Its errors are the ``DatabaseError`` branch of
``golive.errors``.
"""
