"""Redaction: secret keys, registered secrets, and no secret in any workspace file or log."""
import logging
import os

import pytest

from cloudify_upgrade_plugin import log
from cloudify_upgrade_plugin.engine.checks import Check, evaluate
from cloudify_upgrade_plugin.engine.redact import (
    MASK, redact, redact_text, register_secret, registered_secrets)
from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, FunctionStep, Runbook
from cloudify_upgrade_plugin.errors import StepFailed, UpgradeError

PASSWORD = 'Adm1n-S3cret-pw!'
TOKEN = 'CTK-1234567890abcdef'


@pytest.mark.parametrize('key', [
    'password', 'admin_password', 'PASSWORD', 'passwd', 'api_token', 'token',
    'secret_key', 'secret', 'key', 'hash_salt', 'salt', 'encryption_key', 'Authorization',
    'private_key', 'encoding_alphabet', 'encoding_block_size', 'encoding_min_length',
    'password_hash', 'hash', 'Cookie', 'credentials'])
def test_sensitive_keys_are_masked(key):
    assert redact({key: 'value', 'nested': [{key: 'value'}]}) == {
        key: MASK, 'nested': [{key: MASK}]}


@pytest.mark.parametrize('key', ['version', 'tenant', 'sha256', 'size', 'encoding',
                                 'snapshot_id', 'message', 'secrets_count', 'num_tokens',
                                 'secrets', 'keys'])
def test_ordinary_keys_are_kept(key):
    assert redact({key: 'value'}) == {key: 'value'}


def test_secret_names_are_kept_but_values_are_not():
    inventory = {
        'tenants': {
            'default_tenant': {
                'secrets': ['db_pw', 'aws_key'],
                'secret_keys': ['token_x'],
                'secret_details': [{'key': 'db_pw', 'value': 'plain!'}],
            },
            'other': {'secrets': [{'key': 'db_pw', 'value': 'plain!',
                                   'visibility': 'tenant'}]},
        },
    }
    inventory['by_tenant'] = {'secrets': {'t1': [{'key': 'k1', 'value': 'plain!'}]}}
    inventory['tenants']['third'] = {'secrets': {'count': 2, 'names': ['a_key', 'b']}}
    result = redact(inventory)
    assert result['tenants']['third'] == inventory['tenants']['third']
    assert result['tenants']['default_tenant']['secrets'] == ['db_pw', 'aws_key']
    assert result['tenants']['default_tenant']['secret_keys'] == ['token_x']
    assert result['tenants']['default_tenant']['secret_details'] == MASK
    assert result['tenants']['other']['secrets'] == [
        {'key': 'db_pw', 'value': MASK, 'visibility': 'tenant'}]
    assert result['by_tenant'] == {'secrets': {'t1': [{'key': 'k1', 'value': MASK}]}}
    assert 'plain!' not in repr(result)


def test_registered_secrets_are_masked_inside_strings():
    register_secret(PASSWORD)
    register_secret(TOKEN)
    register_secret('')          # ignored
    register_secret(None)        # ignored
    assert registered_secrets() == {PASSWORD, TOKEN}
    doc = {'message': 'login as admin:{0} failed'.format(PASSWORD),
           'list': ['Bearer ' + TOKEN, 3, None, True],
           'as_key_{0}'.format(TOKEN): 1, 'raw': (PASSWORD + TOKEN).encode()}
    result = redact(doc)
    text = repr(result)
    assert PASSWORD not in text and TOKEN not in text
    assert result['message'] == 'login as admin:*** failed'
    assert result['list'] == ['Bearer ***', 3, None, True]
    assert doc['message'].endswith('failed') and PASSWORD in doc['message']  # not mutated
    assert redact_text('x{0}y'.format(PASSWORD)) == 'x***y'
    assert redact({'m': 'only-here-xyz'}, secrets=['only-here']) == {'m': '***-xyz'}


def test_longer_secret_containing_another_is_masked_whole():
    register_secret('abc-1234')
    register_secret('xxabc-1234xx')
    assert redact_text('-xxabc-1234xx-abc-1234-') == '-***-***-'


# -- issue 17 item 12: whole values only, ordinary words never mangled -----------------------

LONG_RANDOM = 'q7Vd-2xK9wLm-Rt4pZ'
PROSE = ["the admin password is the old manager's admin password",
         'Max retries exceeded with url: /api/v3.1/executions',
         'No execution is running on any tenant.',
         'Next: cfy upgrade prepare --mode new-host',
         'old 3.x/4.x managers; user x or admin logged in; password=xy; preadminpost']


@pytest.mark.parametrize('password', ['admin', 'x', LONG_RANDOM])
def test_ordinary_words_are_never_mangled(password):
    register_secret(password)
    for line in PROSE:
        assert redact_text(line) == line
        assert redact({'message': line}) == {'message': line}


@pytest.mark.parametrize('password', ['admin', 'x', LONG_RANDOM])
@pytest.mark.parametrize('template, masked', [
    ('{0}', '***'),
    ('  {0}\n', '***'),
    ('body: {{"password": "{0}", "n": 1}}', 'body: {{"password": "***", "n": 1}}'),
    ("{{'new': '{0}'}}", "{{'new': '***'}}"),
    ('GET https://admin:{0}@10.0.0.1/api', 'GET https://admin:***@10.0.0.1/api'),
    ('GET http://{0}@10.0.0.1/api', 'GET http://***@10.0.0.1/api'),
    ('query ?user=root&password={0}&tenant=t', 'query ?user=root&password=***&tenant=t'),
    ('password: {0}', 'password: ***'),
    ('Token = {0};', 'Token = ***;'),
    ('login admin:{0} failed', 'login admin:*** failed')])
def test_a_secret_standing_as_a_value_is_masked(password, template, masked):
    register_secret(password)
    text = template.format(password)
    assert redact_text(text) == masked.format()
    assert redact({'k': text}) == {'k': masked.format()}


def test_a_strong_secret_is_masked_even_inside_a_word():
    register_secret(LONG_RANDOM)
    register_secret('pw-12345')
    assert redact_text('pre{0}post and x{1}y'.format(LONG_RANDOM, 'pw-12345')) == \
        'pre***post and x***y'


def test_a_weak_secret_escaped_in_json_is_masked():
    register_secret('a"b')
    assert redact_text('{"password": "a\\"b"}') == '{"password": "***"}'


def test_log_records_are_redacted(caplog):
    register_secret(PASSWORD)
    logger = log.get_logger()
    with caplog.at_level(logging.DEBUG, logger=log.LOGGER_NAME):
        logger.info('connecting with %s', PASSWORD)
        logger.warning('token=' + PASSWORD)
        try:
            raise ValueError('bad password ' + PASSWORD)
        except ValueError:
            logger.debug('failed', exc_info=True)
    assert len(caplog.records) == 3
    assert PASSWORD not in caplog.text
    assert 'connecting with ***' in caplog.text


def test_handlers_of_cfy_logger_get_the_filter(tmp_path):
    register_secret(PASSWORD)
    path = tmp_path / 'cli.log'
    handler = logging.FileHandler(str(path))
    parent = logging.getLogger('cloudify.cli.main')
    parent.addHandler(handler)
    try:
        child = log.get_logger().getChild('manager')
        child.setLevel(logging.INFO)
        child.info('child says %s', PASSWORD)
        handler.flush()
    finally:
        parent.removeHandler(handler)
        handler.close()
    content = path.read_text()
    assert 'child says ***' in content
    assert PASSWORD not in content


def _all_files(root):
    for directory, _, filenames in os.walk(root):
        for name in filenames:
            yield os.path.join(directory, name)


def test_no_registered_secret_reaches_any_workspace_file_or_log(ws, caplog):
    register_secret(PASSWORD)
    register_secret(TOKEN)

    def leaky(ctx):
        ctx.logger.info('using password %s and token %s', PASSWORD, TOKEN)
        ctx.workspace.write_json('inventory/source.json', {
            'admin': {'username': 'admin', 'password': PASSWORD},
            'note': 'token is ' + TOKEN})
        return {'admin_password': PASSWORD, 'message': 'ok with ' + PASSWORD,
                'headers': {'Authorization': 'Basic ' + TOKEN}}

    def failing(ctx):
        raise UpgradeError('login failed for admin/{0}'.format(PASSWORD),
                           error_id='login-failed', hints=['password was ' + PASSWORD])

    def also_failing(ctx):
        raise RuntimeError('unexpected ' + TOKEN)

    checks = [Check('admin-login', 'block', 'fail', 'cannot log in with ' + PASSWORD)]
    with caplog.at_level(logging.DEBUG, logger=log.LOGGER_NAME):
        evaluate(checks, [{'check': 'admin-login', 'reason': 'pw is ' + PASSWORD}],
                 journal=ws.journal)
        runbook = Runbook('prepare', [FunctionStep('leaky', run=leaky),
                                      FunctionStep('failing', run=failing)])
        with pytest.raises(StepFailed):
            Runner(ws, runbook, {'password': PASSWORD, 'source': TOKEN}).run(
                Context(ws, yes=True))
        with pytest.raises(StepFailed):
            Runner(ws, Runbook('new-host', [FunctionStep('also-failing', run=also_failing)]),
                   {'password': PASSWORD, 'source': TOKEN}).run(Context(ws, yes=True))
        write_report(ws, {'upgrade_id': ws.upgrade_id, 'password': PASSWORD,
                          'next': 'cfy upgrade new-host', 'note': TOKEN,
                          'error': {'id': 'x', 'message': 'bad ' + PASSWORD}})

    files = list(_all_files(ws.root))
    assert {'journal.jsonl', 'report.json', 'report.md', 'workspace.json'} <= {
        os.path.basename(f) for f in files}
    for path in files:
        with open(path, 'rb') as stream:
            content = stream.read()
        assert PASSWORD.encode() not in content, path
        assert TOKEN.encode() not in content, path
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text
    # The journal still says what happened, without the secrets.
    leaky_entry = ws.journal.last_entry('leaky')
    assert leaky_entry['details']['message'] == 'ok with ***'
    assert leaky_entry['details']['admin_password'] == MASK
    assert ws.journal.last_entry('failing')['details']['message'] == 'login failed for admin/***'


# -- issue 17 item 1: credentials nobody registered, in every logger's records -------------

@pytest.mark.parametrize('line, kept', [
    ('request header:  Authentication-Token: ctok-Ab12-Qw3rTy9Secret77', 'Token: ***'),
    ('request header:  Authorization: Basic YWRtaW46cHc=', 'Authorization: Basic ***'),
    ('Setting `Authentication-Token` header: MQ.abcdef0123', 'header: ***'),
    ("{'Authentication-Token': 'tok-1', 'Tenant': 'default_tenant'}", "'default_tenant'"),
    ('reply:  "200 OK" b\'{"id": "Ab12", "value": "ctok-Ab12-Qw3rTy9Secret77"}\'',
     '"value": "***"'),
    ('body: {"password": "pw\\"quoted"}', '"password": "***"'),
    ('ctok-Ab12-Qw3rTy9Secret77 in a sentence', 'ctok-Ab12-*** in a sentence')])
def test_credentials_are_masked_without_being_registered(line, kept):
    from cloudify_upgrade_plugin.engine.redact import mask_credentials
    masked = mask_credentials(line)
    assert kept in masked
    for secret in ('Qw3rTy9Secret77', 'YWRtaW46cHc=', 'MQ.abcdef0123', 'tok-1',
                   'pw\\"quoted'):
        assert secret not in masked


@pytest.mark.parametrize('line', [
    'Authorization failed: Tried to authenticate with invalid tenant name: x',
    "the admin password is the old manager's admin password",
    'Setting `Tenant` header: default_tenant'])
def test_ordinary_sentences_are_left_alone(line):
    from cloudify_upgrade_plugin.engine.redact import mask_credentials
    assert mask_credentials(line) == line


def test_every_logger_of_the_process_is_redacted(tmp_path):
    """cfy's REST client logger (not a child of the plugin's, its own handler): the record
    factory the plugin installs masks its header lines as they are created."""
    path = tmp_path / 'cli.log'
    handler = logging.FileHandler(str(path))
    rest = logging.getLogger('cloudify.rest_client.http')
    rest.addHandler(handler)
    level, rest.level = rest.level, logging.DEBUG
    try:
        rest.debug('request header:  %s: %s', 'Authentication-Token', 'ctok-Zx9-S3cr3tT0ken')
        rest.debug('request header:  %s: %s', 'Authorization', 'Basic dXNlcjpwYXNz')
        handler.flush()
    finally:
        rest.removeHandler(handler)
        rest.level = level
        handler.close()
    content = path.read_text()
    assert 'Authentication-Token: ***' in content and 'Authorization: Basic ***' in content
    assert 'S3cr3tT0ken' not in content and 'dXNlcjpwYXNz' not in content
