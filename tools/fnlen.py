#!/usr/bin/env python3
"""fnlen.py - lists the functions of a C file longer than a limit (default 120
lines, signature to closing brace) with the section (// >>tag) each lies in.

    python3 tools/fnlen.py [lolcats.h] [--max 120]

A function is a definition that opens at column 0 (name followed by '(') and
ends at the next '}' at column 0 - the header's layout. Exits 1 when any
function is over the limit."""
import re
import sys


def functions(lines):
    sig = re.compile(r'^[A-Za-z_][\w \*]*\b(\w+)\s*\(')
    section, i, n = '?', 0, len(lines)
    while i < n:
        m = re.match(r'^// >>([\w-]+)(?![\w:-])', lines[i])
        if m:
            section = m.group(1)
        m = sig.match(lines[i])
        if m and not re.match(r'^(typedef|struct|enum|union|#)', lines[i]) and '=' not in lines[i].split('(')[0]:
            j = i
            while j < n and not lines[j].rstrip().endswith('{') and not lines[j].rstrip().endswith(';'):
                j += 1
            if j < n and lines[j].rstrip().endswith('{'):
                k = j + 1
                while k < n and not lines[k].startswith('}'):
                    k += 1
                yield m.group(1), section, i + 1, k - i + 1
                i = k
        i += 1


def main(argv):
    path, limit = 'lolcats.h', 120
    args = list(argv)
    if '--max' in args:
        at = args.index('--max')
        limit = int(args[at + 1])
        del args[at:at + 2]
    if args:
        path = args[0]
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    long_ones = sorted((f for f in functions(lines) if f[3] > limit), key=lambda f: -f[3])
    for name, section, line, length in long_ones:
        print('%s:%d: %s (>>%s) %d lines' % (path, line, name, section, length))
    print('%d function(s) over %d lines' % (len(long_ones), limit))
    return 1 if long_ones else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
