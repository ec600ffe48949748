"""The gate in front of the npm peers: skip on a developer's machine, fail on CI."""

import os

import pytest

from tests.interop import peers


def test_missing_node_skips_locally(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="node is not on PATH"):
        peers.require_node_peers({"PATH": str(tmp_path)})


@pytest.mark.parametrize("ci", ["true", "True"])
def test_missing_node_fails_on_ci(tmp_path, ci):
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        peers.require_node_peers({"PATH": str(tmp_path), "CI": ci})


def test_missing_node_modules_fails_on_ci(tmp_path, monkeypatch):
    node = tmp_path / "bin" / "node"
    node.parent.mkdir()
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    monkeypatch.setattr(peers, "PEERS_DIR", tmp_path / "peers")
    env = {"PATH": str(node.parent), "CI": "true"}
    with pytest.raises(pytest.fail.Exception, match="node_modules is missing"):
        peers.require_node_peers(env)
    with pytest.raises(pytest.skip.Exception, match="npm ci"):
        peers.require_node_peers({**env, "CI": "false"})


def test_present_peers_give_the_node_executable(tmp_path, monkeypatch):
    node = tmp_path / "bin" / "node"
    node.parent.mkdir()
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    (tmp_path / "peers" / "node_modules").mkdir(parents=True)
    monkeypatch.setattr(peers, "PEERS_DIR", tmp_path / "peers")
    assert peers.require_node_peers({"PATH": str(node.parent), "CI": "true"}) == os.fspath(node)
