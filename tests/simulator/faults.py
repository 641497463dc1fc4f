"""Fault injection for the simulated managers (issue 3 item 8): 5xx bursts, dropped
downloads, slow responses, failing or hanging executions, REST outages, downloads without
Content-Length, and the auto-heal hazard of an old manager (riemann heals, behaviour §7.4).
Hostile answers (issue 17): JSON of the wrong shape, an endless JSON answer, an answer
trickled a byte at a time, and a redirect to another server.  No Cloudify Manager sends
these; they stand for what a broken proxy or an attacker in its place could.

Every switch is thread-safe and can be set from tests through ``manager.faults``.
Explicit fault durations are real seconds (not scaled by the manager's time scale).
"""
import re
import threading


class _Rule(object):
    def __init__(self, pattern, method, count, **kwargs):
        self.regex = re.compile(pattern) if pattern else None
        self.method = method.upper() if method else None
        self.remaining = count          # None = forever
        self.__dict__.update(kwargs)

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        if self.regex is not None and not self.regex.search(path):
            return False
        return self.remaining is None or self.remaining > 0

    def consume(self):
        if self.remaining is not None:
            self.remaining -= 1


class Faults(object):
    """The fault switches of one simulated manager.

    - ``fail_requests(pattern, count=1, status=503, method=None)``: the next `count` requests
      whose path matches the regex get `status` (502/503/504: nginx HTML page; 500: JSON
      internal_server_error).
    - ``drop_download(after_bytes, times=1, pattern=None)``: archive downloads close the
      connection after `after_bytes` body bytes, `times` times (None = always).
    - ``delay(pattern, seconds, count=None, method=None)``: sleep before answering.
    - ``fail_execution(workflow_id=None, deployment_id=None, node_instance_ids=None,
      error='...', times=None)``: matching executions end `failed` (install_new_agents: only
      the listed node instances fail, the others move).
    - ``hang_execution(workflow_id=None, deployment_id=None, times=None)``: matching
      executions stay `started` until cancelled.
    - ``rest_outage(seconds, mode='refuse')`` (on the manager): connections refused (mode
      'refuse') or nginx 502 pages (mode '502') for `seconds`.
    - ``no_content_length = True``: downloads are sent chunked without Content-Length.
    - ``agent_stays_old(node_instance_id, tenant=None, times=None)``: install_new_agents
      leaves that host's agent where it is (old version, old broker) and still ends
      `terminated` (for the plugin's own check through ``GET /agents``).
    - ``fail_plugin_install(deployment_id, tenant=None, plugin=...)``: the snapshot's wagon
      that deployment uses does not install on this manager (another platform or Python,
      behaviour §12.4): on 4.x-5.0.x targets the restore's deployment environment fails
      (``workflows.Engine._restore_deployment_envs``); a wagon is never installed by a
      5.1+ restore.
    - ``replace_answer(pattern, body, status=200, count=None, method='GET')``: matching
      requests get ``body`` as their JSON answer, unauthenticated (a wrong shape: ``items``
      that is not a list, a ``version`` that is a number...).
    - ``endless_json(pattern, count=None, method='GET', limit=None)``: a 200 JSON answer
      (chunked, no Content-Length) that never ends: ``{"items": [`` then one 64 KiB string
      after another, ``limit`` bytes at most (None: until the client goes away).
    - ``trickle(pattern, interval=1.0, count=None, method='GET', body=None)``: a 200 JSON
      answer with a Content-Length, sent one byte every ``interval`` seconds (each read gets
      a byte long before any per-read timeout).
    - ``redirect(pattern, location, status=302, count=None, method=None)``: matching
      requests are redirected to ``location`` + the request's path and query (another
      origin: the test's recording server).
    - ``add_events(workflow_id=None, messages=(), event_type='task_succeeded', times=None)``:
      matching executions send these events (one per message) right after
      ``workflow_started`` (a chatty workflow; a message holding a secret).
    - ``clear()``: remove every fault.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._fail = []
        self._drops = []
        self._delays = []
        self._exec_fail = []
        self._exec_hang = []
        self._agent_stay = []
        self._plugin_fail = []
        self._answers = []
        self._events = []
        self.no_content_length = False

    def clear(self):
        with self._lock:
            self._fail, self._drops, self._delays = [], [], []
            self._exec_fail, self._exec_hang, self._agent_stay = [], [], []
            self._plugin_fail, self._answers, self._events = [], [], []
            self.no_content_length = False

    # -- HTTP level ----------------------------------------------------------------------
    def fail_requests(self, pattern, count=1, status=503, method=None):
        if not 500 <= int(status) <= 599:
            raise ValueError('status must be a 5xx code')
        with self._lock:
            self._fail.append(_Rule(pattern, method, count, status=int(status)))

    def drop_download(self, after_bytes, times=1, pattern=None):
        with self._lock:
            self._drops.append(_Rule(pattern, 'GET', times, after_bytes=int(after_bytes)))

    def delay(self, pattern, seconds, count=None, method=None):
        with self._lock:
            self._delays.append(_Rule(pattern, method, count, seconds=float(seconds)))

    def take_failure(self, method, path):
        """The 5xx status to answer with, or None."""
        with self._lock:
            for rule in self._fail:
                if rule.matches(method, path):
                    rule.consume()
                    return rule.status
        return None

    def take_delay(self, method, path):
        with self._lock:
            for rule in self._delays:
                if rule.matches(method, path):
                    rule.consume()
                    return rule.seconds
        return 0.0

    def take_drop(self, path):
        """Bytes after which this download must be cut, or None."""
        with self._lock:
            for rule in self._drops:
                if rule.matches('GET', path):
                    rule.consume()
                    return rule.after_bytes
        return None

    # -- hostile answers (issue 17) ---------------------------------------------------------
    def replace_answer(self, pattern, body, status=200, count=None, method='GET'):
        with self._lock:
            self._answers.append(_Rule(pattern, method, count, kind='replace', body=body,
                                       status=int(status)))

    def endless_json(self, pattern, count=None, method='GET', limit=None):
        with self._lock:
            self._answers.append(_Rule(pattern, method, count, kind='endless', limit=limit))

    def trickle(self, pattern, interval=1.0, count=None, method='GET', body=None):
        with self._lock:
            self._answers.append(_Rule(pattern, method, count, kind='trickle',
                                       interval=float(interval), body=body))

    def redirect(self, pattern, location, status=302, count=None, method=None):
        with self._lock:
            self._answers.append(_Rule(pattern, method, count, kind='redirect',
                                       location=location.rstrip('/'), status=int(status)))

    def take_answer(self, method, path):
        """The hostile-answer rule matching this request (consumed), or None."""
        with self._lock:
            for rule in self._answers:
                if rule.matches(method, path):
                    rule.consume()
                    return rule
        return None

    # -- executions ------------------------------------------------------------------------
    def fail_execution(self, workflow_id=None, deployment_id=None, node_instance_ids=None,
                       error='Simulated workflow failure', times=None, tenant=None):
        with self._lock:
            self._exec_fail.append(_Rule(None, None, times, workflow_id=workflow_id,
                                         deployment_id=deployment_id, tenant=tenant,
                                         node_instance_ids=node_instance_ids, error=error))

    def hang_execution(self, workflow_id=None, deployment_id=None, times=None, tenant=None):
        with self._lock:
            self._exec_hang.append(_Rule(None, None, times, workflow_id=workflow_id,
                                         deployment_id=deployment_id, tenant=tenant))

    def agent_stays_old(self, node_instance_id, tenant=None, times=None):
        with self._lock:
            self._agent_stay.append(_Rule(None, None, times, node_instance_id=node_instance_id,
                                          tenant=tenant))

    def take_agent_stay(self, tenant, node_instance_id):
        """True when install_new_agents must leave this host's agent unmoved."""
        with self._lock:
            for rule in self._agent_stay:
                if (rule.remaining is None or rule.remaining > 0) and \
                        rule.node_instance_id == node_instance_id and \
                        rule.tenant in (None, tenant):
                    rule.consume()
                    return True
        return False

    def add_events(self, workflow_id=None, messages=(), event_type='task_succeeded',
                   times=None, deployment_id=None, tenant=None):
        with self._lock:
            self._events.append(_Rule(None, None, times, workflow_id=workflow_id,
                                      deployment_id=deployment_id, tenant=tenant,
                                      messages=list(messages), event_type=event_type))

    def take_events(self, execution):
        """[(event_type, message)] a starting execution sends besides its own."""
        found = []
        with self._lock:
            for rule in self._events:
                if self._exec_match(rule, execution):
                    rule.consume()
                    found.extend((rule.event_type, message) for message in rule.messages)
        return found

    @staticmethod
    def _exec_match(rule, execution):
        if rule.remaining is not None and rule.remaining <= 0:
            return False
        for name in ('workflow_id', 'deployment_id'):
            wanted = getattr(rule, name)
            if wanted is not None and execution.get(name) != wanted:
                return False
        if rule.tenant is not None and execution.get('tenant_name') != rule.tenant:
            return False
        return True

    def take_execution_fault(self, execution):
        """('hang', None) / ('fail', rule) / (None, None) for a starting execution."""
        with self._lock:
            for rule in self._exec_hang:
                if self._exec_match(rule, execution):
                    rule.consume()
                    return 'hang', rule
            for rule in self._exec_fail:
                if self._exec_match(rule, execution):
                    rule.consume()
                    return 'fail', rule
        return None, None

    # -- plugins (behaviour §12.4) ---------------------------------------------------------------
    def fail_plugin_install(self, deployment_id, tenant=None,
                            plugin='cloudify-openstack-plugin'):
        with self._lock:
            self._plugin_fail.append({'deployment_id': deployment_id, 'tenant': tenant,
                                      'plugin': plugin})

    def plugin_install_failure(self, tenant, deployment_id):
        """The plugin that does not install into this deployment's environment, or None."""
        with self._lock:
            for rule in self._plugin_fail:
                if rule['deployment_id'] == deployment_id and \
                        rule['tenant'] in (None, tenant):
                    return rule['plugin']
        return None
