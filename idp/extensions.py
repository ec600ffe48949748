"""Extensions, created bare here and bound to the app in ``create_app``.

The Authlib authorization server lives in ``idp.oidc.server`` instead: it needs the
models, and the models need ``db`` from here. The per-IP rate limiter is made per app
in ``idp.web``: Flask-Limiter keeps its switch and store on the object, so one shared
object would let one app's settings leak into another's.
"""

from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


# Objects stay loaded after a commit: a request commits, then reads what it just wrote or
# read (the code exchange commits the claim and the token, then builds the answer from
# them). SQLAlchemy's default would reload each of them with a SELECT of its own.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()


def reads_without_transaction():
    """Run this request's queries in autocommit: for endpoints that only read.

    Userinfo and introspection answer from one or two SELECTs. In a transaction each pays two
    more round trips, psycopg's ``BEGIN`` and the teardown's ``ROLLBACK``, which make half of
    their database time. A no-op once the request has started a transaction.
    """
    if not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
