"""The README's main command (`make demo` = `python -m tests.demo`) keeps working."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_runs_the_whole_upgrade(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS='ignore', TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, '-m', 'tests.demo'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for heading in ('1. cfy upgrade plan', '2. cfy upgrade prepare', '3. cfy upgrade new-host',
                    '4. cfy upgrade verify-heals', '5. cfy upgrade status'):
        assert heading in out
    assert 'Agents: 4 of 4 deployment(s) moved.' in out
    assert 'No suspicious heal found.' in out
    # it cleaned up after itself
    assert not [name for name in os.listdir(str(tmp_path))
                if name.startswith('cfy-upgrade-demo-')]
