"""Fixture of the snapshot transfer tests: ``serve(**cfg)`` starts an archive_server.Server
(stopped at teardown)."""
import pytest

from tests.unit.snapshot.archive_server import Server


@pytest.fixture
def serve():
    servers = []

    def start(**cfg):
        server = Server(**cfg)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()
