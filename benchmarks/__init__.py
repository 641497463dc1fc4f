"""Benchmarks of cloudify-upgrade-plugin (run with `python -m benchmarks`; see README.md).

Each benchmark is a module of this package whose name does not start with `_` and which
defines `main(argv) -> int`; `benchmarks.__main__` finds them, so adding one is adding a
file.  Results worth keeping are recorded in `benchmarks/README.md`.
"""

import os
import re

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'README.md')


def record_section(name, title, text, readme=README):
    """Rewrite the ``<!-- name:begin -->`` ... ``<!-- name:end -->`` block of README.md
    with ``text`` (appended under ``title`` when the block is missing), atomically."""
    begin, end = '<!-- {0}:begin -->'.format(name), '<!-- {0}:end -->'.format(name)
    with open(readme) as stream:
        content = stream.read()
    block = '{0}\n{1}\n{2}'.format(begin, text.rstrip('\n'), end)
    if begin in content and end in content:
        content = re.sub(re.escape(begin) + '.*?' + re.escape(end), lambda _: block,
                         content, flags=re.S)
    else:
        content = content.rstrip('\n') + '\n\n{0}\n\n{1}\n'.format(title, block)
    tmp = readme + '.tmp'
    with open(tmp, 'w') as stream:
        stream.write(content)
    os.replace(tmp, readme)
