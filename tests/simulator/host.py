"""The simulated manager host: a real SSH server (asyncssh) on 127.0.0.1 (or another loopback
address, `bind_host`, for cluster nodes) for tests.

Owns `SimulatedHost`: key authentication, an exec channel that understands the few commands the
plugin runs on a manager host, and an SFTP subsystem, all acting on a per-host directory that
stands for the host's filesystem (remote `/etc/cloudify/ssl/x` is `<root_dir>/etc/cloudify/ssl/x`).
`systemctl` is delegated to the `on_systemctl(action, unit) -> (exit_code, output)` callback so
that the simulated manager can react (stop heals, reload rest-security, ...).

The server runs its own asyncio loop in a daemon thread; commands and the callback run in a small
worker pool of that loop, so a slow callback never blocks the SSH transport.

Permission rule (simple, documented, close enough to a CentOS manager host):
- the SSH user may read every file under the root;
- it may write (create, remove, chmod, extract into) only under `/tmp`, `/var/tmp` and its home
  `/home/<user>`, unless the command runs under `sudo`; `chown` always needs `sudo`;
- `systemctl` verbs that change state need `sudo`; `is-active`, `is-enabled` and `status` do not;
- SFTP has no sudo: writes over SFTP follow the no-sudo rule (upload to /tmp, then `sudo mv`).
Paths that would leave the root (`..` above `/`, symlinks resolving outside) are refused with
"Permission denied". Relative paths are relative to `/home/<user>`.

Supported exec commands (argv split with shlex; no pipes, redirections or `sh -c` but the one
below; an optional `sudo [-n] [-H] [-E] [-u root] [--]` prefix): cat, test -f/-d/-e/-s,
ls [-1] [-a] [-A], mkdir [-p] [-m MODE], cp [-r|-R|-a|-p|-f], mv [-f], rm [-f] [-r],
chmod [-R] OCTAL, chown [-R], tar {c|x}[z][v]f {-|FILE} [-C DIR] [NAME...], sha256sum,
grep [-q] [-s] [-F] [-E] [-i], df [-P] [-k], systemctl, true, false, echo [-n], whoami,
`mktemp -d TEMPLATE` (a new directory, mode 0700, its path on stdout; coreutils mktemp) and
exactly `sh -c 'umask NNN && exec cat > "$1"' sh PATH` (stdin into PATH, created with mode
0666 & ~NNN: what a shell does).  Anything else exits 127 with "command not found" (exit 1
with "sudo: X: command not found" under sudo, as sudo does).

``created`` lists every regular file the host created, with the mode it had when it was
created (``{'path', 'mode', 'via': 'sh'|'sftp', 'dir_mode'}``, ``dir_mode`` the mode of
its directory then), so tests can tell a file made private from its first byte from one
chmod-ed afterwards (issue 17 item 2).
"""

import asyncio
import concurrent.futures
import hashlib
import io
import os
import posixpath
import random
import re
import shlex
import shutil
import stat
import string
import tarfile
import threading

import asyncssh

USER_WRITABLE = ('/tmp', '/var/tmp')
SYSTEMCTL_READ_ONLY = ('is-active', 'is-enabled', 'status')
SYSTEMCTL_ACTIONS = ('start', 'stop', 'restart', 'reload', 'enable', 'disable',
                     *SYSTEMCTL_READ_ONLY)
SHELL_OPERATORS = ('|', '||', '&&', ';', '&', '<', '>', '>>', '2>&1', '$(', '`')
FAKE_DEVICE = '/dev/mapper/centos-root'
DENIED = {   # coreutils' wording when the user may not write there
    'mkdir': "%s: cannot create directory '%s': Permission denied",
    'cp': "%s: cannot create regular file '%s': Permission denied",
    'mv': "%s: cannot move '%s': Permission denied",
    'rm': "%s: cannot remove '%s': Permission denied",
    'chmod': "%s: changing permissions of '%s': Operation not permitted",
    'tar': '%s: %s: Cannot open: Permission denied',
}


class PathEscape(Exception):
    """A remote path that would leave the simulated host's root."""


class CommandFailed(Exception):
    """Ends a command with an exit code and a message on stderr."""

    def __init__(self, rc, message):
        super().__init__(message)
        self.rc = rc
        self.message = message


class SimulatedHost:
    """A manager host reachable over SSH on 127.0.0.1 (see the module docstring)."""

    def __init__(self, root_dir, on_systemctl, authorized_keys_path=None, port=0, user='centos',
                 bind_host='127.0.0.1'):
        self.root = os.path.realpath(str(root_dir))
        self.bind_host = bind_host  # a cluster node listens on its own loopback address
        os.makedirs(self.root, exist_ok=True)
        for sub in ('tmp', 'var/tmp', 'home/' + user):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self.on_systemctl = on_systemctl
        self.user = user
        self.home = '/home/' + user
        self.port = port
        self.commands = []          # command lines received; appended from the server thread
        self.created = []           # files created, with their mode at creation (docstring)
        self.refuse_keys = False    # fault: refuse every key
        self.sudo_allowed = True    # fault: False makes every sudo ask for a password
        self.disk_kb = None         # None: real numbers of root_dir's fs; or (total_kb, avail_kb)
        self.key_dir = self.root + '-ssh'
        self.key_path = os.path.join(self.key_dir, 'id_ed25519')
        self.host_key_path = os.path.join(self.key_dir, 'ssh_host_ed25519_key')
        self.authorized_keys_path = authorized_keys_path or os.path.join(
            self.key_dir, 'authorized_keys')
        self._make_keys(own_authorized_keys=authorized_keys_path is None)
        self._loop = None
        self._thread = None
        self._acceptor = None
        self._pool = None
        self._conns = set()

    # ----------------------------------------------------------------- keys

    def _make_keys(self, own_authorized_keys):
        """Create (or reuse, so a restarted host keeps its identity) the client and host keys."""
        os.makedirs(self.key_dir, mode=0o700, exist_ok=True)
        os.chmod(self.key_dir, 0o700)
        for path in (self.key_path, self.host_key_path):
            if not os.path.exists(path):
                key = asyncssh.generate_private_key('ssh-ed25519', comment='simulated-host')
                key.write_private_key(path)
                key.write_public_key(path + '.pub')
            os.chmod(path, 0o600)
        self._host_key = asyncssh.read_private_key(self.host_key_path)
        if own_authorized_keys:
            with open(self.key_path + '.pub', 'rb') as pub:
                data = pub.read()
            with open(self.authorized_keys_path, 'wb') as out:
                out.write(data)
            os.chmod(self.authorized_keys_path, 0o600)

    def new_host_key(self):
        """A new identity, as a reinstalled host gets (a new host key); a running server is
        restarted on the same port with it."""
        key = asyncssh.generate_private_key('ssh-ed25519', comment='simulated-host')
        key.write_private_key(self.host_key_path)
        key.write_public_key(self.host_key_path + '.pub')
        os.chmod(self.host_key_path, 0o600)
        self._host_key = key
        if self._thread is not None:
            self.stop()
            self.start()

    def fingerprint(self):
        """The host key's SHA-256 fingerprint as ssh-keygen -l shows it (SHA256:...)."""
        return self._host_key.get_fingerprint('sha256')

    def known_hosts_line(self):
        """The known_hosts line for this host, e.g. `[127.0.0.1]:2222 ssh-ed25519 AAAA...`."""
        text = self._host_key.export_public_key('openssh').decode()
        kind, blob = text.split()[:2]
        name = self.bind_host if self.port == 22 else '[%s]:%d' % (self.bind_host, self.port)
        return '%s %s %s' % (name, kind, blob)

    def _key_ok(self, username, key):
        if self.refuse_keys or username != self.user:
            return False
        try:
            with open(self.authorized_keys_path, 'rb') as keys:
                lines = keys.read().splitlines()
        except OSError:
            return False
        for line in lines:
            line = line.strip()
            if not line or line.startswith(b'#'):
                continue
            try:
                allowed = asyncssh.import_public_key(line)
            except (asyncssh.KeyImportError, ValueError):
                continue
            if allowed.public_data == key.public_data:
                return True
        return False

    # ------------------------------------------------------------ lifecycle

    def start(self):
        """Start listening on 127.0.0.1; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError('simulated host already started')
        ready = concurrent.futures.Future()
        self._loop = asyncio.new_event_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix='sim-host-cmd')
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                        name='sim-host-%s' % os.path.basename(self.root))
        self._thread.start()
        try:
            self.port = ready.result(timeout=30)
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        return self

    def stop(self):
        """Close the listener and every connection; returns once the port is closed."""
        if self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _serve(self, ready):
        asyncio.set_event_loop(self._loop)
        try:
            self._acceptor = self._loop.run_until_complete(self._listen())
        except BaseException as exc:   # e.g. port in use: reported to start()
            ready.set_exception(exc)
            self._loop.close()
            return
        ready.set_result(self._acceptor.get_port())
        self._loop.run_forever()
        pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _listen(self):
        return await asyncssh.listen(
            host=self.bind_host, port=self.port, reuse_address=True,
            server_factory=lambda: _Server(self), server_host_keys=[self._host_key],
            process_factory=self._handle_process, sftp_factory=lambda chan: _Sftp(chan, self),
            encoding=None, allow_scp=False, login_timeout=30, agent_forwarding=False,
            x11_forwarding=False, allow_pty=True)

    async def _shutdown(self):
        self._acceptor.close()
        await self._acceptor.wait_closed()
        conns = list(self._conns)
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                await asyncio.wait_for(conn.wait_closed(), 2)
            except (asyncio.TimeoutError, OSError):
                conn.abort()

    # ---------------------------------------------------------------- paths

    def remote_path(self, path):
        """Normalise a remote path to an absolute one; PathEscape if `..` climbs above `/`."""
        if not path:
            raise PathEscape(path)
        if not path.startswith('/'):
            path = self.home + '/' + path
        parts = []
        for part in path.split('/'):
            if part in ('', '.'):
                continue
            if part == '..':
                if not parts:
                    raise PathEscape(path)
                parts.pop()
            else:
                parts.append(part)
        return '/' + '/'.join(parts)

    def local_path(self, path):
        """The local path behind a remote path; PathEscape if it (or a symlink) leaves the root."""
        local = os.path.join(self.root, self.remote_path(path).lstrip('/'))
        real = os.path.realpath(local)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise PathEscape(path)
        return local

    def writable(self, path, sudo):
        """The permission rule: writes need sudo outside /tmp, /var/tmp and the user's home."""
        if sudo:
            return True
        remote = self.remote_path(path)
        return any(remote == top or remote.startswith(top + '/')
                   for top in USER_WRITABLE + (self.home,))

    # ------------------------------------------------------------- commands

    async def _handle_process(self, process):
        line = process.command
        if line is None:
            process.stderr.write(b'simulated host: interactive shells are not supported\n')
            process.exit(1)
            return
        self.commands.append(line)
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            rc, out, err = 2, b'', ('bash: syntax error: %s\n' % exc).encode()
        else:
            stdin = b''
            if _reads_stdin(argv):
                stdin = await process.stdin.read()
            loop = asyncio.get_running_loop()
            rc, out, err = await loop.run_in_executor(self._pool, self.execute, argv, stdin)
        try:
            if out:
                process.stdout.write(out)
            if err:
                process.stderr.write(err)
            await process.stdout.drain()
            process.exit(rc)
        except (OSError, asyncssh.Error):   # client went away
            pass

    def execute(self, argv, stdin=b''):
        """Run one command (already split) -> (exit_code, stdout bytes, stderr bytes)."""
        out = io.BytesIO()
        bad = [arg for arg in argv if arg in SHELL_OPERATORS or arg.startswith(('>', '2>'))]
        if bad:
            return 2, b'', ('simulated host: shell syntax %r is not supported\n'
                            % bad[0]).encode()
        sudo = False
        if argv and argv[0] == 'sudo':
            argv, sudo = _strip_sudo(argv[1:])
            if argv is None:
                return 1, b'', b'usage: sudo [-n] [-u user] command\n'
            if not self.sudo_allowed:
                return 1, b'', b'sudo: a password is required\n'
        if not argv:
            return 0, b'', b''
        name, args = argv[0], argv[1:]
        handler = getattr(self, '_cmd_' + name.replace('-', '_'), None)
        if handler is None:
            if sudo:
                return 1, b'', ('sudo: %s: command not found\n' % name).encode()
            return 127, b'', ('bash: %s: command not found\n' % name).encode()
        try:
            rc = handler(args, sudo, stdin, out) or 0
            return rc, out.getvalue(), b''
        except CommandFailed as exc:
            return exc.rc, out.getvalue(), (exc.message.rstrip('\n') + '\n').encode()
        except PathEscape as exc:
            return 1, out.getvalue(), ('%s: %s: Permission denied (outside the simulated host)\n'
                                       % (name, exc)).encode()

    def _need_write(self, cmd, path, sudo):
        if not self.writable(path, sudo):
            template = DENIED.get(cmd, "%s: cannot write '%s': Permission denied")
            raise CommandFailed(2 if cmd == 'tar' else 1, template % (cmd, path))

    def record_created(self, remote, via):
        local = self.local_path(remote)
        self.created.append({'path': self.remote_path(remote), 'via': via,
                             'mode': stat.S_IMODE(os.stat(local).st_mode),
                             'dir_mode': stat.S_IMODE(os.stat(os.path.dirname(local)).st_mode)})

    def _cmd_mktemp(self, args, sudo, stdin, out):
        flags, rest = _split_flags(args, 'd')
        if 'd' not in flags or len(rest) != 1 or not rest[0].endswith('XXX'):
            raise CommandFailed(1, 'mktemp: only `mktemp -d TEMPLATE` is simulated')
        template = rest[0]
        stem = template.rstrip('X')
        self._need_write('mkdir', stem, sudo)
        for _ in range(100):
            path = stem + ''.join(
                random.choice(string.ascii_letters + string.digits)
                for _ in range(len(template) - len(stem)))
            try:
                os.mkdir(self.local_path(path), 0o700)
            except FileExistsError:
                continue
            os.chmod(self.local_path(path), 0o700)
            out.write((path + '\n').encode())
            return 0
        raise CommandFailed(1, "mktemp: failed to create directory via template '%s'"
                            % template)

    def _cmd_sh(self, args, sudo, stdin, out):
        match = len(args) == 4 and args[0] == '-c' and args[2] == 'sh' and re.fullmatch(
            r'umask ([0-7]{3,4}) && (?:exec )?cat > "\$1"', args[1])
        if not match:
            raise CommandFailed(2, 'simulated host: only `sh -c \'umask NNN && exec cat > '
                                   '"$1"\' sh PATH` is supported')
        path = args[3]
        self._need_write('cp', path, sudo)
        mode = 0o666 & ~int(match.group(1), 8)
        local = self.local_path(path)
        try:
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        except OSError as exc:
            raise CommandFailed(1, 'sh: 1: cannot create %s: %s' % (path, exc.strerror))
        with os.fdopen(fd, 'wb') as stream:
            os.fchmod(stream.fileno(), mode)     # the test process's own umask is not the host's
            self.record_created(path, 'sh')
            stream.write(stdin)

    def _cmd_true(self, args, sudo, stdin, out):
        return 0

    def _cmd_false(self, args, sudo, stdin, out):
        return 1

    def _cmd_echo(self, args, sudo, stdin, out):
        newline = True
        if args and args[0] == '-n':
            newline, args = False, args[1:]
        out.write((' '.join(args) + ('\n' if newline else '')).encode())

    def _cmd_whoami(self, args, sudo, stdin, out):
        out.write(('root\n' if sudo else self.user + '\n').encode())

    def _cmd_cat(self, args, sudo, stdin, out):
        errors = []
        for path in _operands(args):
            try:
                with open(self.local_path(path), 'rb') as src:
                    shutil.copyfileobj(src, out)
            except OSError as exc:
                errors.append('cat: %s: %s' % (path, exc.strerror))
        if errors:
            raise CommandFailed(1, '\n'.join(errors))

    def _cmd_test(self, args, sudo, stdin, out):
        if len(args) != 2 or args[0] not in ('-f', '-d', '-e', '-s'):
            raise CommandFailed(2, 'test: unsupported expression (simulated host)')
        local = self.local_path(args[1])
        checks = {'-f': os.path.isfile, '-d': os.path.isdir, '-e': os.path.exists,
                  '-s': lambda p: os.path.isfile(p) and os.path.getsize(p) > 0}
        return 0 if checks[args[0]](local) else 1

    def _cmd_ls(self, args, sudo, stdin, out):
        flags, paths = _split_flags(args, '1aA')
        rc, errors = 0, []
        for path in paths or ['.']:
            local = self.local_path(path)
            if os.path.isdir(local):
                names = sorted(os.listdir(local))
                if 'a' not in flags and 'A' not in flags:
                    names = [n for n in names if not n.startswith('.')]
                if 'a' in flags:
                    names = ['.', '..'] + names
                out.write(''.join(n + '\n' for n in names).encode())
            elif os.path.lexists(local):
                out.write((path + '\n').encode())
            else:
                rc = 2
                errors.append("ls: cannot access '%s': No such file or directory" % path)
        if errors:
            raise CommandFailed(rc, '\n'.join(errors))

    def _cmd_mkdir(self, args, sudo, stdin, out):
        mode = None
        if '-m' in args:
            at = args.index('-m')
            mode, args = _octal('mkdir', args[at + 1:at + 2]), args[:at] + args[at + 2:]
        flags, paths = _split_flags(args, 'p')
        for path in paths:
            self._need_write('mkdir', path, sudo)
            local = self.local_path(path)
            try:
                if 'p' in flags:
                    os.makedirs(local, exist_ok=True)
                else:
                    os.mkdir(local)
            except OSError as exc:
                raise CommandFailed(1, "mkdir: cannot create directory '%s': %s"
                                    % (path, exc.strerror))
            if mode is not None:
                os.chmod(local, mode)

    def _cmd_cp(self, args, sudo, stdin, out):
        flags, paths = _split_flags(args, 'rRapf')
        if len(paths) < 2:
            raise CommandFailed(1, 'cp: missing destination file operand')
        *sources, dest = paths
        recursive = bool(set(flags) & set('rRa'))
        for source in sources:
            src = self.local_path(source)
            target = dest
            if os.path.isdir(self.local_path(dest)):
                target = dest.rstrip('/') + '/' + posixpath.basename(source.rstrip('/'))
            self._need_write('cp', target, sudo)
            dst = self.local_path(target)
            if not os.path.lexists(src):
                raise CommandFailed(1, "cp: cannot stat '%s': No such file or directory" % source)
            if os.path.isdir(src):
                if not recursive:
                    raise CommandFailed(1, "cp: -r not specified; omitting directory '%s'"
                                        % source)
                shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst, follow_symlinks=False)

    def _cmd_mv(self, args, sudo, stdin, out):
        flags, paths = _split_flags(args, 'f')
        if len(paths) != 2:
            raise CommandFailed(1, 'mv: exactly one source and one destination are supported')
        source, dest = paths
        src = self.local_path(source)
        if os.path.isdir(self.local_path(dest)):
            dest = dest.rstrip('/') + '/' + posixpath.basename(source.rstrip('/'))
        self._need_write('mv', source, sudo)
        self._need_write('mv', dest, sudo)
        if not os.path.lexists(src):
            raise CommandFailed(1, "mv: cannot stat '%s': No such file or directory" % source)
        os.replace(src, self.local_path(dest))

    def _cmd_rm(self, args, sudo, stdin, out):
        flags, paths = _split_flags(args, 'frR')
        for path in paths:
            if self.remote_path(path) == '/':
                raise CommandFailed(1, "rm: it is dangerous to operate recursively on '/'")
            self._need_write('rm', path, sudo)
            local = self.local_path(path)
            if not os.path.lexists(local):
                if 'f' in flags:
                    continue
                raise CommandFailed(1, "rm: cannot remove '%s': No such file or directory" % path)
            if os.path.isdir(local) and not os.path.islink(local):
                if not set(flags) & set('rR'):
                    raise CommandFailed(1, "rm: cannot remove '%s': Is a directory" % path)
                shutil.rmtree(local)
            else:
                os.unlink(local)

    def _cmd_chmod(self, args, sudo, stdin, out):
        flags, rest = _split_flags(args, 'R')
        mode = _octal('chmod', rest[:1])
        for path in rest[1:]:
            self._need_write('chmod', path, sudo)
            local = self.local_path(path)
            if not os.path.exists(local):
                raise CommandFailed(1, "chmod: cannot access '%s': No such file or directory"
                                    % path)
            targets = [local]
            if 'R' in flags and os.path.isdir(local):
                for top, dirs, files in os.walk(local):
                    targets += [os.path.join(top, n) for n in dirs + files]
            for target in targets:
                if not os.path.islink(target):
                    os.chmod(target, mode)

    def _cmd_chown(self, args, sudo, stdin, out):
        flags, rest = _split_flags(args, 'R')
        if len(rest) < 2:
            raise CommandFailed(1, 'chown: missing operand')
        for path in rest[1:]:
            if not os.path.lexists(self.local_path(path)):
                raise CommandFailed(1, "chown: cannot access '%s': No such file or directory"
                                    % path)
            if not sudo:
                raise CommandFailed(1, "chown: changing ownership of '%s': Operation not "
                                       "permitted" % path)

    def _cmd_sha256sum(self, args, sudo, stdin, out):
        errors = []
        for path in _operands(args):
            digest = hashlib.sha256()
            try:
                with open(self.local_path(path), 'rb') as src:
                    for block in iter(lambda: src.read(1 << 16), b''):
                        digest.update(block)
            except OSError as exc:
                errors.append('sha256sum: %s: %s' % (path, exc.strerror))
                continue
            out.write(('%s  %s\n' % (digest.hexdigest(), path)).encode())
        if errors:
            raise CommandFailed(1, '\n'.join(errors))

    def _cmd_grep(self, args, sudo, stdin, out):
        flags, rest = _split_flags(args, 'qsFEi')
        if len(rest) < 2:
            raise CommandFailed(2, 'grep: pattern and file required (simulated host)')
        pattern = rest[0].encode()
        if 'F' in flags:
            pattern = re.escape(pattern)
        regex = re.compile(pattern, re.IGNORECASE if 'i' in flags else 0)
        found, errors = False, []
        for path in rest[1:]:
            try:
                with open(self.local_path(path), 'rb') as src:
                    lines = src.read().splitlines()
            except OSError as exc:
                errors.append('grep: %s: %s' % (path, exc.strerror))
                continue
            for text in lines:
                if regex.search(text):
                    found = True
                    if 'q' in flags:
                        return 0
                    prefix = (path + ':').encode() if len(rest) > 2 else b''
                    out.write(prefix + text + b'\n')
        if errors:
            raise CommandFailed(2, '' if 's' in flags else '\n'.join(errors))
        return 0 if found else 1

    def _cmd_df(self, args, sudo, stdin, out):
        flags, paths = _split_flags(args, 'Pkh')
        if self.disk_kb is None:
            usage = shutil.disk_usage(self.root)
            total, avail = usage.total // 1024, usage.free // 1024
        else:
            total, avail = self.disk_kb
        used = max(total - avail, 0)
        capacity = -(-used * 100 // max(used + avail, 1))
        lines = ['Filesystem     1024-blocks      Used Available Capacity Mounted on']
        for path in paths or ['/']:
            if not os.path.exists(self.local_path(path)):
                raise CommandFailed(1, "df: '%s': No such file or directory" % path)
            lines.append('%s %11d %9d %9d %7d%% /' % (FAKE_DEVICE, total, used, avail, capacity))
        out.write(('\n'.join(lines) + '\n').encode())

    def _cmd_systemctl(self, args, sudo, stdin, out):
        words = [a for a in args if not a.startswith('-')]
        if not words or words[0] not in SYSTEMCTL_ACTIONS:
            raise CommandFailed(1, 'Unknown command verb %s.' % (words[0] if words else ''))
        action, units = words[0], [u[:-len('.service')] if u.endswith('.service') else u
                                   for u in words[1:]]
        if not units:
            raise CommandFailed(1, 'Too few arguments.')
        rc, errors = 0, []
        for unit in units:
            if action not in SYSTEMCTL_READ_ONLY and not sudo:
                raise CommandFailed(1, 'Failed to %s %s.service: Interactive authentication '
                                       'required.' % (action, unit))
            try:
                code, text = self.on_systemctl(action, unit) if self.on_systemctl else (0, '')
            except Exception as exc:   # a broken callback must not kill the server
                code, text = 1, 'simulated host: on_systemctl raised %r' % exc
            text = text or ''
            if text and not text.endswith('\n'):
                text += '\n'
            if code == 0 or action in SYSTEMCTL_READ_ONLY:
                out.write(text.encode())
            else:
                errors.append(text.rstrip('\n'))
            rc = rc or code
        if rc and errors:
            raise CommandFailed(rc, '\n'.join(errors))
        return rc

    def _cmd_tar(self, args, sudo, stdin, out):
        if len(args) < 2:
            raise CommandFailed(2, 'tar: usage: tar {c|x}[z]f ARCHIVE [-C DIR] [NAME...]')
        letters = set(args[0].lstrip('-'))
        if not letters <= set('cxzfvp') or 'f' not in letters or len(letters & set('cx')) != 1:
            raise CommandFailed(2, 'tar: unsupported options %r (simulated host)' % args[0])
        archive, rest, directory, names = args[1], args[2:], self.home, []
        while rest:
            arg = rest.pop(0)
            if arg == '-C' and rest:
                directory = rest.pop(0)
            elif arg.startswith('-'):
                raise CommandFailed(2, 'tar: unsupported option %r (simulated host)' % arg)
            else:
                names.append(arg)
        gz = 'z' in letters
        if 'c' in letters:
            self._tar_create(archive, directory, names, gz, sudo, out)
        else:
            self._tar_extract(archive, directory, gz, sudo, stdin)

    def _tar_create(self, archive, directory, names, gz, sudo, out):
        if not names:
            raise CommandFailed(2, 'tar: Cowardly refusing to create an empty archive')
        buf = io.BytesIO()

        def as_root(info):
            info.uid = info.gid = 0
            info.uname = info.gname = 'root'
            return info
        with tarfile.open(fileobj=buf, mode='w:gz' if gz else 'w') as tar:
            for name in names:
                local = self.local_path(posixpath.join(directory, name))
                if not os.path.lexists(local):
                    raise CommandFailed(2, 'tar: %s: Cannot stat: No such file or directory'
                                        % name)
                tar.add(local, arcname=name, filter=as_root)
        if archive == '-':
            out.write(buf.getvalue())
        else:
            self._need_write('tar', archive, sudo)
            with open(self.local_path(archive), 'wb') as dst:
                dst.write(buf.getvalue())

    def _tar_extract(self, archive, directory, gz, sudo, stdin):
        self._need_write('tar', directory, sudo)
        dest = self.local_path(directory)
        if not os.path.isdir(dest):
            raise CommandFailed(2, 'tar: %s: Cannot open: No such file or directory' % directory)
        if archive != '-':
            try:
                with open(self.local_path(archive), 'rb') as src:
                    stdin = src.read()
            except OSError as exc:
                raise CommandFailed(2, 'tar: %s: Cannot open: %s' % (archive, exc.strerror))
        try:
            with tarfile.open(fileobj=io.BytesIO(stdin), mode='r:gz' if gz else 'r:') as tar:
                tar.extractall(dest, filter='data')
        except tarfile.FilterError as exc:
            raise CommandFailed(2, 'tar: refusing member outside the destination: %s' % exc)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise CommandFailed(2, 'tar: This does not look like a tar archive (%s)' % exc)


def _reads_stdin(argv):
    """Only `tar x...f -` consumes stdin; other commands never wait for it."""
    if argv and argv[0] == 'sudo':
        argv, _ = _strip_sudo(argv[1:])
        argv = argv or []
    return ((len(argv) >= 3 and argv[0] == 'tar' and 'x' in argv[1] and argv[2] == '-')
            or (len(argv) == 5 and argv[:2] == ['sh', '-c']))


def _strip_sudo(args):
    """Drop sudo's options -> (argv or None when no command, True)."""
    args = list(args)
    while args and args[0].startswith('-'):
        opt = args.pop(0)
        if opt == '--':
            break
        if opt == '-u' and args:
            args.pop(0)
    return (args or None), True


def _split_flags(args, allowed):
    """Split leading single-letter flags (`-rf`, `-1`) from operands; `--` ends flags."""
    flags, operands, done = '', [], False
    for arg in args:
        if not done and arg == '--':
            done = True
        elif not done and arg.startswith('-') and len(arg) > 1:
            bad = set(arg[1:]) - set(allowed)
            if bad:
                raise CommandFailed(2, 'invalid option -- %r (simulated host)' % ''.join(bad))
            flags += arg[1:]
        else:
            operands.append(arg)
    return flags, operands


def _operands(args):
    return [a for a in args if a != '--']


def _octal(cmd, values):
    try:
        mode = int(values[0], 8)
    except (IndexError, ValueError):
        raise CommandFailed(1, '%s: invalid mode: %r (octal only in the simulated host)'
                            % (cmd, values[0] if values else ''))
    return stat.S_IMODE(mode)


class _Server(asyncssh.SSHServer):
    """Public-key authentication only, against the host's authorized_keys file."""

    def __init__(self, host):
        self._host = host
        self._conn = None

    def connection_made(self, conn):
        self._conn = conn
        self._host._conns.add(conn)

    def connection_lost(self, exc):
        self._host._conns.discard(self._conn)

    def begin_auth(self, username):
        return True

    def password_auth_supported(self):
        return False

    def public_key_auth_supported(self):
        return True

    def validate_public_key(self, username, key):
        return self._host._key_ok(username, key)


class _Sftp(asyncssh.SFTPServer):
    """SFTP rooted in the host directory, following the no-sudo write rule."""

    def __init__(self, chan, host):
        super().__init__(chan)
        self._host = host

    def _local(self, path):
        try:
            return self._host.local_path(path.decode('utf-8'))
        except PathEscape:
            raise asyncssh.SFTPPermissionDenied('Permission denied (outside the simulated host)')

    def _check_write(self, path):
        self._local(path)
        if not self._host.writable(path.decode('utf-8'), sudo=False):
            raise asyncssh.SFTPPermissionDenied('Permission denied')

    def map_path(self, path):
        return self._local(path).encode('utf-8')

    def reverse_map_path(self, path):
        root = self._host.root.encode('utf-8')
        if path == root:
            return b'/'
        if path.startswith(root + b'/'):
            return path[len(root):]
        raise asyncssh.SFTPNoSuchFile('File not found')

    def open(self, path, pflags, attrs):
        writes = (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
                  | asyncssh.FXF_APPEND)
        if pflags & writes:
            self._check_write(path)
        existed = os.path.lexists(self._local(path))
        handle = super().open(path, pflags, attrs)
        if pflags & asyncssh.FXF_CREAT and not existed:
            self._host.record_created(path.decode('utf-8'), 'sftp')
        return handle

    def setstat(self, path, attrs):
        self._check_write(path)
        attrs.uid = attrs.gid = None     # ownership is not simulated
        return super().setstat(path, attrs)

    def remove(self, path):
        self._check_write(path)
        return super().remove(path)

    def mkdir(self, path, attrs):
        self._check_write(path)
        return super().mkdir(path, attrs)

    def rmdir(self, path):
        self._check_write(path)
        return super().rmdir(path)

    def rename(self, oldpath, newpath):
        self._check_write(oldpath)
        self._check_write(newpath)
        return super().rename(oldpath, newpath)

    def posix_rename(self, oldpath, newpath):
        self._check_write(oldpath)
        self._check_write(newpath)
        return super().posix_rename(oldpath, newpath)

    def symlink(self, oldpath, newpath):
        raise asyncssh.SFTPOpUnsupported('symlinks are not supported by the simulated host')

    def link(self, oldpath, newpath):
        raise asyncssh.SFTPOpUnsupported('links are not supported by the simulated host')
