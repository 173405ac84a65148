"""Secrets around the database: a failing statement never shows its bound parameters.

Run on a SQLite file and on the real PostgreSQL server the test session starts.
"""

from __future__ import annotations

import traceback

import pytest
import sqlalchemy as sa

from vidpipe.db import make_engine

# What a signed upload URL looks like in a journal write.
SIGNED_URL = "https://storage.example/upload/abc?X-Goog-Signature=sig-never-printed-0123456789"


# -- bound parameters stay out of error messages ----------------------------------------------


def failing_insert(engine: sa.Engine) -> sa.exc.DBAPIError:
    """Run a statement that fails with a signed URL as its bound parameter; the error."""
    with pytest.raises(sa.exc.DBAPIError) as info:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO vidpipe_no_such_table (upload_url) VALUES (:url)"),
                {"url": SIGNED_URL},
            )
    return info.value


def test_a_failing_statement_never_shows_its_bound_parameters(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        error = failing_insert(engine)
        shown = str(error) + "".join(traceback.format_exception(error))
        assert "vidpipe_no_such_table" in shown  # the statement is still named
        assert "sig-never-printed" not in shown
    finally:
        engine.dispose()

    # The same statement on an engine without the setting prints the parameter: the check
    # above can fail.
    plain = sa.create_engine(make_engine(db_url).url)
    try:
        assert "sig-never-printed" in str(failing_insert(plain))
    finally:
        plain.dispose()
