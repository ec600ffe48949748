"""Column helpers shared by the models."""

import time

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy.orm import mapped_column


def now():
    """Current Unix time in whole seconds."""
    return int(time.time())


def tenant_fk(index=True):
    """The tenant_id column every tenant-owned row carries; ``index=False`` where a unique
    constraint starting with it serves as its index (a second one misleads the planner)."""
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=index)


def timestamp(nullable=False, default=None):
    """An integer Unix-seconds column."""
    if default is None and not nullable:
        default = now
    return mapped_column(BigInteger, nullable=nullable, default=default)
