"""Host tests trust the simulated hosts' keys as `--accept-new-host-keys` would (unless a
test configures otherwise), with a private HOME so ~/.ssh/known_hosts is the test's own."""
import pytest

from cloudify_upgrade_plugin.host import known_hosts


@pytest.fixture(autouse=True)
def trust_new_host_keys(tmp_path, monkeypatch):
    home = tmp_path / 'home'
    home.mkdir()
    monkeypatch.setenv('HOME', str(home))
    monkeypatch.setattr(known_hosts, 'SYSTEM_KNOWN_HOSTS', str(tmp_path / 'no-system-file'))
    yield known_hosts.configure(accept_new=True)
    known_hosts.configure()
