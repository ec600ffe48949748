"""What a step answers (Keycloak's vocabulary): the view alone persists and advances."""

from dataclasses import dataclass
from dataclasses import field


@dataclass
class Success:
    """The step is done; ``facts`` are merged into the transaction."""

    facts: dict = field(default_factory=dict)


@dataclass
class Challenge:
    """Show the step's page again, with field errors and a form-level message.

    ``status`` is 400 for a failed try; 200 for a notice such as "a new code was sent".
    """

    errors: dict = field(default_factory=dict)
    message: str | None = None
    facts: dict = field(default_factory=dict)
    status: int = 400
    code: str | None = None  # stable, like Failure.code: tests and support read it


@dataclass
class Failure:
    """The journey cannot go on here: a message page; ``code`` is the stable error code."""

    code: str
    title: str
    message: str
    facts: dict = field(default_factory=dict)


@dataclass
class Redirect:
    """Leave the journey's pages for ``location`` (an upstream IdP); ``facts`` are kept."""

    location: str
    facts: dict = field(default_factory=dict)
