"""The npm test peers in ``tests/peers``: finding them, and running a step of one.

A missing peer skips its tests on a developer's machine, but on CI (``CI=true``)
it fails them: an interoperability suite that silently skips proves nothing.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"


class PeerError(Exception):
    """A peer step failed; ``error`` is the peer's description (library error name, code, …)."""

    def __init__(self, step, error):
        super().__init__(f"{step}: {json.dumps(error)}")
        self.step = step
        self.error = error


def require_node_peers(env=None):
    """The ``node`` executable; if it or the peers are missing, skip — or fail when ``CI=true``."""
    env = os.environ if env is None else env
    node = shutil.which("node", path=env.get("PATH"))
    if node is None:
        missing = "node is not on PATH"
    elif not (PEERS_DIR / "node_modules").is_dir():
        missing = f"{PEERS_DIR / 'node_modules'} is missing; run `npm ci` in {PEERS_DIR}"
    else:
        return node
    if env.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the npm test peers cannot run: {missing}", pytrace=False)
    pytest.skip(f"npm test peers unavailable: {missing}")


def run_node_step(node, script, step, payload, timeout=30):
    """Run ``node script step`` with ``payload`` as JSON on stdin; returns its JSON answer."""
    done = subprocess.run(
        [node, str(PEERS_DIR / script), step],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"{script} {step} exited {done.returncode} without JSON:\n{done.stdout}\n{done.stderr}"
        ) from None
    if done.returncode != 0 or "error" in answer:
        raise PeerError(step, answer.get("error"))
    return answer
