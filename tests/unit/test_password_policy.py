"""Password policy presets (b2c, flexopus, nist), the breach range API, and the live rule script.

The examples come from the guides: the Fluxys/Azure AD B2C step 8 list, the Flexopus
"Password requirements" list, and NIST SP 800-63B rev. 4 §3.1.1.2. The breach API is a
real HTTP server on loopback, so timeouts and refused connections are the real thing.
"""

import hashlib
import json
import logging
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from flask import Flask

from idp.config import ConfigError
from idp.config import load_config
from idp.services import password_policy
from idp.services.password_policy import B2C
from idp.services.password_policy import B2C_SYMBOLS
from idp.services.password_policy import FLEXOPUS
from idp.services.password_policy import NIST
from idp.services.password_policy import check
from idp.services.password_policy import is_breached
from idp.services.password_policy import policy_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
OFFLINE = {"BREACH_API_URL": ""}
# Not in the shipped list: the range API is what decides for it.
UNLISTED = "Quartz-Lantern-48"


def failed(policy, password, confirmation=None, **kwargs):
    """The failed rule ids, offline unless a config is given; confirmation defaults to equal."""
    kwargs.setdefault("config", OFFLINE)
    confirmation = password if confirmation is None else confirmation
    return check(policy, password, confirmation, **kwargs).failed


# --- presets and their rules -------------------------------------------------------------


def test_rule_ids_in_display_order():
    assert [rule.id for rule in B2C.rules] == [
        "length",
        "character_classes",
        "allowed_characters",
        "no_spaces",
        "no_unicode",
        "no_dot_before_at",
        "confirmation",
    ]
    assert [rule.id for rule in FLEXOPUS.rules] == [
        "min_length",
        "lowercase",
        "uppercase",
        "digit",
        "confirmation",
        "not_breached",
    ]
    assert [rule.id for rule in NIST.rules] == [
        "min_length",
        "max_length",
        "confirmation",
        "blocklist",
        "not_breached",
    ]


@pytest.mark.parametrize("policy", [B2C, FLEXOPUS, NIST], ids=lambda p: p.name)
def test_every_rule_has_text_message_and_check(policy):
    for rule in policy.rules:
        assert rule.text.endswith(".") and rule.message.endswith(".")
        assert callable(rule.test)
    assert any(rule.id == "confirmation" for rule in policy.rules)


def test_policy_for_reads_the_tenant_setting(caplog):
    assert policy_for(SimpleNamespace(settings={})) is NIST
    assert policy_for(SimpleNamespace(settings={"password_policy": "b2c"})) is B2C
    assert policy_for(SimpleNamespace(settings={"password_policy": "flexopus"})) is FLEXOPUS
    with caplog.at_level(logging.WARNING, "idp.password_policy"):
        unknown = SimpleNamespace(slug="acme", settings={"password_policy": "strong"})
        assert policy_for(unknown) is NIST
    assert "strong" in caplog.text


@pytest.mark.parametrize("policy", [B2C, FLEXOPUS, NIST], ids=lambda p: p.name)
def test_the_two_passwords_should_match(policy):
    result = check(policy, "Quartz-Lamp-48", "Quartz-Lamp-49", config=OFFLINE)
    assert not result.ok
    assert result.failed == ["confirmation"]
    assert result.messages == [password_policy.MESSAGE_CONFIRMATION]


# --- b2c: the Fluxys guide, step 8 (Azure AD B2C) ------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Password1!",
        "Abcdefg1",  # lower, upper, digit
        "abcdefg1!",  # lower, digit, symbol
        "ABCDEFG1!",  # upper, digit, symbol
        "Abcdefgh!",  # lower, upper, symbol
        "Abc.def1@x",  # a dot is fine when no "@" follows it at once
        "Password1!abcdef",  # 16 characters
    ],
)
def test_b2c_accepts(password):
    result = check(B2C, password, password, config=OFFLINE)
    assert result.ok, result.messages
    assert result.normalized == password


@pytest.mark.parametrize("symbol", list(B2C_SYMBOLS))
def test_b2c_accepts_every_documented_symbol(symbol):
    assert failed(B2C, f"passw0rd{symbol}") == []


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("password", "character_classes"),  # lowercase only
        ("password12", "character_classes"),  # 2 of 4
        ("PASSWORD!!", "character_classes"),
        ("Pass1!", "length"),  # 6 characters
        ("Password1!abcdefg", "length"),  # 17 characters
        ("pass word1A", "no_spaces"),
        ("Password1\t", "no_spaces"),
        ("Pässword1A", "no_unicode"),
        ("Password1€", "no_unicode"),
        ("Abc.@defg1", "no_dot_before_at"),
        ("Password1<", "allowed_characters"),
        ("Password1>", "allowed_characters"),
    ],
)
def test_b2c_refuses(password, rule):
    result = check(B2C, password, password, config=OFFLINE)
    assert result.failed == [rule]
    assert len(result.messages) == 1


def test_b2c_fullwidth_letters_are_unicode_not_ascii():
    """NFKC would turn them into "Password1!"; the b2c rules see what was typed."""
    assert failed(B2C, "Ｐａｓｓｗｏｒｄ１！") == ["character_classes", "no_unicode"]


# --- flexopus ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [UNLISTED, "Äpfelbaum7x", "zebraQuartz9"])
def test_flexopus_accepts(password):
    assert failed(FLEXOPUS, password) == []


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Zq7xlmn", "min_length"),
        ("ZEBRA-QUARTZ-7", "lowercase"),
        ("zebra-quartz-7", "uppercase"),
        ("Zebra-Quartz", "digit"),
        ("Password1", "not_breached"),  # meets the rest, but it is in the common list
        ("Welcome1", "not_breached"),
    ],
)
def test_flexopus_refuses(password, rule):
    assert failed(FLEXOPUS, password) == [rule]


def test_breach_check_waits_for_the_other_rules():
    """A password that fails anyway is not looked up (nor sent, even as a hash prefix)."""
    assert failed(FLEXOPUS, "password1") == ["uppercase"]
    assert failed(FLEXOPUS, "Password1", "Password2") == ["confirmation"]


# --- nist ----------------------------------------------------------------------------------


def test_nist_accepts_a_long_unicode_passphrase_with_spaces():
    phrase = "Ünïcödé pässphrase, with spaces — ☃ and 🐧 " * 2
    result = check(NIST, phrase, phrase, config=OFFLINE)
    assert result.ok, result.messages
    assert result.normalized == unicodedata.normalize("NFKC", phrase)


def test_nist_has_no_composition_rules():
    assert failed(NIST, "lowercase letters only here") == []


def test_nist_normalizes_before_checking_and_for_hashing():
    composed = unicodedata.normalize("NFC", "crème brûlée au café")
    decomposed = unicodedata.normalize("NFD", composed)
    result = check(NIST, decomposed, composed, config=OFFLINE)
    assert result.ok
    assert result.normalized == composed
    assert check(NIST, "ｆｕｌｌｗｉｄｔｈ ｐｈｒａｓｅ", "fullwidth phrase", config=OFFLINE).ok


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short7!", "min_length"),
        ("x" * 129, "max_length"),
        ("password123", "blocklist"),
        ("PASSWORD123", "blocklist"),
        ("qwerty123", "blocklist"),
    ],
)
def test_nist_refuses(password, rule):
    assert failed(NIST, password) == [rule]


def test_nist_length_bounds():
    assert failed(NIST, "Xq7!zebr") == []
    assert failed(NIST, "a quiet lantern " * 8) == []  # 128 characters


@pytest.mark.parametrize(
    "password", ["alice.wonder", "Alice.Wonder2024", "alice.wonder@example.org"]
)
def test_nist_refuses_the_email_and_its_local_part(password):
    assert failed(NIST, password, email="alice.wonder@example.org") == ["blocklist"]


@pytest.mark.parametrize("password", ["Acme Widgets", "acmewidgets!!", "my acme-widgets pass"])
def test_nist_refuses_the_tenant_name_and_slug(password):
    tenant = SimpleNamespace(name="Acme Widgets", slug="acme-widgets", settings={})
    assert failed(NIST, password, tenant=tenant) == ["blocklist"]


def test_nist_short_context_words_only_match_exactly():
    tenant = SimpleNamespace(name="Bo", slug="bo", settings={})
    assert failed(NIST, "a bold new boat", email="bo@example.org", tenant=tenant) == []


# --- the offline list ----------------------------------------------------------------------


def test_common_list_is_shipped_lowercase_and_loaded_once():
    common = password_policy.common_passwords()
    assert common is password_policy.common_passwords()
    assert 10_000 <= len(common) <= 100_000
    assert {"password", "123456", "password1", "qwerty123"} <= common
    assert all(word == word.lower() for word in common)
    assert (ROOT / "idp" / "data" / "README.md").is_file()


def test_package_data_includes_the_list():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\nidp = ["data/*.txt"]' in text


# --- the breach range API on a real loopback server ---------------------------------------


class RangeAPI:
    """A k-anonymity range endpoint on 127.0.0.1: ``ranges`` maps a prefix to its body."""

    def __init__(self):
        self.ranges = {}
        self.requests = []
        self.status = 200
        self.delay = 0
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                api.requests.append((self.path, dict(self.headers)))
                if api.delay:
                    api.release.wait(api.delay)
                body = api.ranges.get(self.path.rsplit("/", 1)[-1], "").encode()
                try:
                    self.send_response(api.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting: that is the test

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/range/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def serve(self, password, count, case=str.upper):
        """Publish ``password`` with ``count`` among padding lines, as the real API answers."""
        digest = hashlib.sha1(password.encode()).hexdigest().upper()
        lines = ["0018A45C4D1DEF81644B54AB7F969B88D65:0", f"{case(digest[5:])}:{count}"]
        lines.append("FFFFF00000000000000000000000000000F:3")
        self.ranges[digest[:5]] = "\r\n".join(lines)
        return digest

    def config(self, **settings):
        """The settings ``check`` and ``is_breached`` read, pointed at this server."""
        return {"BREACH_API_URL": self.url, "BREACH_API_TIMEOUT": 2.0, **settings}


@pytest.fixture
def range_api():
    """A running range API, stopped (and any slow answer released) after the test."""
    api = RangeAPI()
    api.thread.start()
    yield api
    api.release.set()
    api.server.shutdown()
    api.server.server_close()
    api.thread.join(5)


@pytest.fixture
def closed_port_url():
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/range/"


def test_breached_password_is_found_by_prefix_only(range_api):
    digest = range_api.serve(UNLISTED, 42)
    assert is_breached(UNLISTED, range_api.config()) is True
    [(path, headers)] = range_api.requests
    assert path == "/range/" + digest[:5]
    assert headers.get("Add-Padding") == "true"
    assert digest[5:] not in path and UNLISTED not in path


def test_suffix_comparison_ignores_hex_case(range_api):
    range_api.serve(UNLISTED, 3, case=str.lower)
    assert is_breached(UNLISTED, range_api.config()) is True


def test_not_breached_when_absent_or_only_padding(range_api):
    assert is_breached(UNLISTED, range_api.config()) is False
    range_api.serve(UNLISTED, 0)
    assert is_breached(UNLISTED, range_api.config()) is False


def test_the_offline_list_is_asked_first(range_api):
    assert is_breached("Password1", range_api.config()) is True
    assert range_api.requests == []


def test_empty_url_turns_the_online_check_off():
    assert is_breached(UNLISTED, {"BREACH_API_URL": ""}) is False
    assert is_breached("letmein", {}) is True


def test_check_refuses_a_breached_password(range_api):
    range_api.serve(UNLISTED, 7)
    result = check(FLEXOPUS, UNLISTED, UNLISTED, config=range_api.config())
    assert result.failed == ["not_breached"]
    assert result.messages == [password_policy.MESSAGE_BREACHED]
    assert failed(NIST, UNLISTED, config=range_api.config()) == ["not_breached"]


def test_check_sends_the_normalized_password(range_api):
    phrase = unicodedata.normalize("NFC", "Fenêtre-Lantern-48")
    range_api.serve(phrase, 1)
    decomposed = unicodedata.normalize("NFD", phrase)
    assert failed(FLEXOPUS, decomposed, config=range_api.config()) == ["not_breached"]


def test_server_down_fails_open_with_a_warning(closed_port_url, caplog):
    config = {"BREACH_API_URL": closed_port_url, "BREACH_API_TIMEOUT": 2.0}
    with caplog.at_level(logging.WARNING, "idp.password_policy"):
        assert is_breached(UNLISTED, config) is None
        assert check(FLEXOPUS, UNLISTED, UNLISTED, config=config).ok
    assert "breach API unavailable" in caplog.text
    assert UNLISTED not in caplog.text


def test_server_down_fails_closed_when_configured(closed_port_url):
    config = {"BREACH_API_URL": closed_port_url, "BREACH_FAIL_CLOSED": True}
    result = check(NIST, UNLISTED, UNLISTED, config=config)
    assert result.failed == ["not_breached"]
    assert result.messages == [password_policy.MESSAGE_BREACH_UNAVAILABLE]


def test_server_error_is_unknown(range_api):
    range_api.status = 503
    assert is_breached(UNLISTED, range_api.config()) is None
    assert failed(NIST, UNLISTED, config=range_api.config(BREACH_FAIL_CLOSED=True)) == [
        "not_breached"
    ]


def test_slow_server_beyond_the_timeout_is_unknown(range_api):
    range_api.serve(UNLISTED, 9)
    range_api.delay = 5
    config = range_api.config(BREACH_API_TIMEOUT=0.2)
    assert is_breached(UNLISTED, config) is None
    assert check(FLEXOPUS, UNLISTED, UNLISTED, config=config).ok
    assert not check(FLEXOPUS, UNLISTED, UNLISTED, config={**config, "BREACH_FAIL_CLOSED": True}).ok


def test_check_reads_the_app_config(range_api):
    range_api.serve(UNLISTED, 2)
    app = Flask(__name__)
    app.config.update(range_api.config())
    with app.app_context():
        assert check(FLEXOPUS, UNLISTED, UNLISTED).failed == ["not_breached"]
    assert check(FLEXOPUS, UNLISTED, UNLISTED).ok  # no app: offline only


# --- settings ------------------------------------------------------------------------------


def _config(tmp_path, **environ):
    return load_config(
        {"DATABASE_URL": "sqlite://", "INSTANCE_DIR": str(tmp_path)},
        environ={"IDP_ENV": "development", **environ},
    )


def test_breach_settings_defaults_and_environment(tmp_path):
    config = _config(tmp_path)
    assert config["BREACH_API_URL"] == "https://api.pwnedpasswords.com/range/"
    assert config["BREACH_API_TIMEOUT"] == 2.0
    assert config["BREACH_FAIL_CLOSED"] is False
    config = _config(
        tmp_path,
        IDP_BREACH_API_URL="",
        IDP_BREACH_API_TIMEOUT="0.5",
        IDP_BREACH_FAIL_CLOSED="true",
    )
    assert config["BREACH_API_URL"] == ""
    assert config["BREACH_API_TIMEOUT"] == 0.5
    assert config["BREACH_FAIL_CLOSED"] is True


def test_breach_settings_are_validated(tmp_path):
    with pytest.raises(ConfigError):
        _config(tmp_path, IDP_BREACH_API_TIMEOUT="0")
    with pytest.raises(ConfigError):
        _config(tmp_path, IDP_BREACH_API_URL="ftp://mirror.example/range/")
    production = {"IDP_ENV": "production", "IDP_SECRET_KEY": "s" * 40}
    with pytest.raises(ConfigError, match="https"):
        _config(tmp_path, **production, IDP_BREACH_API_URL="http://mirror.example/range/")
    assert _config(tmp_path, **production, IDP_BREACH_API_URL="http://127.0.0.1:8000/range/")


# --- the live rule list: the partial and the script ----------------------------------------


def test_partial_renders_ids_texts_and_patterns():
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    with app.test_request_context():
        html = app.jinja_env.get_template("journey/_password_rules.html").render(policy=B2C)
        nist = app.jinja_env.get_template("journey/_password_rules.html").render(policy=NIST)
    assert 'id="password-rules"' in html and "data-normalize" not in html
    assert 'data-rule="no_dot_before_at" data-pattern="^(?![\\s\\S]*\\.@)"' in html
    assert 'data-pattern="=confirmation"' in html
    assert "&#34;" in html  # the double quote among the symbols is escaped
    assert 'data-normalize="NFKC"' in nist
    assert '<li data-rule="not_breached">' in nist and '<li data-rule="blocklist">' in nist


EXAMPLES = [
    "",
    "Password1!",
    "password",
    "Pass1!",
    "Password1!abcdefg",
    "pass word1A",
    "Pässword1A",
    "Abc.@defg1",
    "Password1<",
    "Ｐａｓｓｗｏｒｄ１！",
    "ZEBRA-QUARTZ-7",
    "Äpfelbaum7x",
    "x" * 129,
    "a quiet lantern " * 8,
    "ﬁve ﬁne ﬁsh",  # NFKC makes the ligatures two letters each
    "Ünïcödé pässphrase 🐧",
    'quote"and\\backslash',
    "Password1\t",
    "Ctrl\x01char9A",
    "non\u00a0breaking9A",  # a no-break space: a space, and not ASCII
] + [f"passw0rd{symbol}" for symbol in B2C_SYMBOLS]

NODE_SCRIPT = """
const rules = require(process.argv[1]);
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map(c => rules.ruleState(c[0], c[1], c[2], c[3]))));
"""


def _node():
    """node, or a skip; on CI (``CI=true``) a failure, as for the other node suites."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and node is not on PATH", pytrace=False)
        pytest.skip("node is not on PATH")
    return node


def test_browser_patterns_agree_with_the_server():
    """password_rules.js, run by node, ticks exactly the rules the server would pass."""
    cases, expected = [], []
    for policy in (B2C, FLEXOPUS, NIST):
        normalize = "NFKC" if policy.normalize else None
        for rule in policy.rules:
            if rule.pattern is None:
                continue
            for password in EXAMPLES:
                for confirmation in (password, password + "x", ""):
                    cases.append([rule.pattern, password, confirmation, normalize])
                    expected.append(_server_state(policy, rule, password, confirmation))
    done = subprocess.run(
        [_node(), "-e", NODE_SCRIPT, str(ROOT / "static" / "password_rules.js")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = json.loads(done.stdout)
    mismatches = [(c, a, e) for c, a, e in zip(cases, answers, expected, strict=True) if a != e]
    assert mismatches == []


def _server_state(policy, rule, password, confirmation):
    """The server's verdict as the script shows it: neutral while a field it needs is empty."""
    if not password or (rule.pattern == "=confirmation" and not confirmation):
        return None
    result = check(policy, password, confirmation, config=OFFLINE)
    return rule.id not in result.failed


BIND_SCRIPT = """
const rules = require(process.argv[1]);
function element(attrs) {
  const classes = new Set(), listeners = {};
  return {
    value: "", attrs, listeners,
    getAttribute: name => (name in attrs ? attrs[name] : null),
    addEventListener: (type, fn) => { listeners[type] = fn; },
    classList: { toggle: (name, on) => { on ? classes.add(name) : classes.delete(name); } },
    classes,
  };
}
const items = [
  element({"data-rule": "min_length", "data-pattern": "^[\\\\s\\\\S]{8,}"}),
  element({"data-rule": "confirmation", "data-pattern": "=confirmation"}),
];
const list = element({});
list.querySelectorAll = () => items;
const byIds = process.argv[2] === "ids";
const input = element(byIds
  ? {"data-password-rules": "rules", "data-confirmation": "again"}
  : {"data-password-rules": ""});
const again = element(byIds ? {} : {"data-password-confirm": ""});
const doc = {
  getElementById: id => (byIds ? {rules: list, again} : {"password-rules": list})[id] || null,
  querySelector: selector => (selector === "[data-password-confirm]" ? again : null),
};
rules.bind(input, doc);
const seen = () => items.map(item => [...item.classes].join(","));
const states = [seen()];
input.value = "short"; input.listeners.input(); states.push(seen());
input.value = "long enough"; input.listeners.input(); states.push(seen());
again.value = "long enough"; again.listeners.input(); states.push(seen());
again.value = "long enougH"; again.listeners.input(); states.push(seen());
console.log(JSON.stringify(states));
"""


@pytest.mark.parametrize("markup", ["ids", "markers"])
def test_script_marks_each_rule_as_the_user_types(markup):
    """Fields named by id, or found by the partial's default id and data-password-confirm."""
    done = subprocess.run(
        [_node(), "-e", BIND_SCRIPT, str(ROOT / "static" / "password_rules.js"), markup],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == [
        ["", ""],
        ["unmet", ""],
        ["met", ""],
        ["met", "met"],
        ["met", "unmet"],
    ]
