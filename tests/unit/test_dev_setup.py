"""The development setup says the same thing everywhere (issue 17 item 24).

One setuptools pin (cfy 7.0.5 imports ``pkg_resources``; the reason is written once, in the
README's Install section) in the README, the Makefile, tox.ini, the packaging tests' fresh venv
and the start-up benchmark's venvs; `make test` and tox show pytest's progress (never ``-q``)
with the slowest tests and a line per test not passed; the README says how long the tests take.
The files are read as text, nothing is run.
"""
import configparser
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIN = re.compile(r'setuptools\s*(<|<=|==|~=|!=|>=|>)\s*([0-9][0-9.]*)')


def _read(*path):
    with open(os.path.join(ROOT, *path)) as stream:
        return stream.read()


def _pins(text):
    return {(op, version.rstrip('.')) for op, version in PIN.findall(text)}


def _makefile_test_recipe():
    makefile = _read('Makefile')
    recipe = re.search(r'^test:.*\n((?:\t.*\n)+)', makefile, re.M)
    assert recipe, 'the Makefile has no test target'
    return recipe.group(1)


def test_one_setuptools_pin_everywhere():
    readme = _read('README.md')
    install = readme[readme.index('## Install'):readme.index('\n## ', readme.index('## Install'))]
    [pin] = _pins(install)
    assert pin[0] == '<'
    assert 'pkg_resources' in install and 'removed in' in install   # the reason, once
    tox = configparser.ConfigParser(interpolation=None)
    tox.read_string(_read('tox.ini'))
    places = {
        'README.md': _pins(readme),
        'Makefile': _pins(_read('Makefile')),
        'tox.ini [testenv]': _pins(tox['testenv']['deps']),
        'tox.ini [testenv:wagon]': _pins(tox['testenv:wagon']['deps']),
        'tests/packaging/conftest.py': _pins(_read('tests', 'packaging', 'conftest.py')),
        'benchmarks/startup.py': _pins(_read('benchmarks', 'startup.py')),
    }
    assert places == {name: {pin} for name in places}
    # the others point to the reason instead of giving their own
    for name in ('Makefile', 'tox.ini', os.path.join('tests', 'packaging', 'conftest.py'),
                 os.path.join('benchmarks', 'startup.py')):
        text = _read(name)
        assert 'README.md' in text and 'Install' in text, name
        assert 'pkg_resources' not in text, name


def test_make_test_shows_progress_and_a_summary():
    recipe = _makefile_test_recipe()
    assert 'pytest' in recipe
    tox = configparser.ConfigParser(interpolation=None)
    tox.read_string(_read('tox.ini'))
    for where, command in (('Makefile', recipe), ('tox.ini', tox['testenv']['commands'])):
        args = command.split()
        assert not {'-q', '--quiet', '-qq'} & set(args), where
        assert not [a for a in args if re.fullmatch(r'-q+|--capture=.*', a)], where
        assert '-ra' in args and '--durations=10' in args, where
    makefile = _read('Makefile')
    assert not re.search(r'^PYTEST_ARGS\s*\??=.*-q', makefile, re.M)


def test_readme_says_how_long_the_tests_take():
    readme = _read('README.md')
    section = readme[readme.index('Run the tests'):readme.index('make test')]
    assert re.search(r'about \d+(-\d+)? minutes on a \d-core machine', section)
