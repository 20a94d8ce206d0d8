#!/usr/bin/python3
"""check_walkthrough.py - runs the README's walkthrough as written and checks
every figure it shows against what the commands print.

    /usr/bin/python3 tools/check_walkthrough.py [--readme README.md] [--bin build/lolcats]
                                                [--keep] [--print]

The walkthrough is the part of README.md between the lines
`<!-- walkthrough -->` and `<!-- /walkthrough -->`. In it:
  - ```sh blocks are the commands. All of them run, in order, in one `sh -e`
    (variables carry over) inside a scratch directory build/walkthrough/run
    holding `build/lolcats` (a link to --bin, default the repository's
    build/lolcats) and `../shared` (a link to the repository's ../shared).
  - ```text blocks are what the sh block just above prints (stdout and stderr
    together): each non-empty line is a template; some line of that block's
    output must have the same text, `…` matching anything, and every number
    in the template must equal the printed one to the template's own
    precision (1.6176 matches 1.617634 but not 1.617734).
  - a number with a decimal point in the prose (outside code blocks), e.g.
    "the teacher scores 1.6176 nats/token", must equal, to its precision,
    some number printed by the walkthrough's commands.
Exit 0 when every figure matches; 1 naming each mismatching figure; 0 with a
`SKIPPED:` line when ../shared (the models and data) is absent. --print runs
the commands and prints each block's output (to refresh the README by hand).
"""
import os
import re
import shutil
import subprocess
import sys
import time

NUM = r"-?[0-9][0-9,]*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
NUM_RE = re.compile(NUM)


def parse(readme):
    """The walkthrough's blocks: [('sh'|'text'|'prose', text)]."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    try:
        a = next(i for i, l in enumerate(lines) if l.strip() == "<!-- walkthrough -->")
        b = next(i for i, l in enumerate(lines) if l.strip() == "<!-- /walkthrough -->")
    except StopIteration:
        sys.exit("check_walkthrough: error: %s has no <!-- walkthrough --> ... <!-- /walkthrough --> "
                 "section; add the markers around the walkthrough" % readme)
    blocks, i, prose = [], a + 1, []
    while i < b:
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            if prose:
                blocks.append(("prose", "\n".join(prose)))
                prose = []
            kind = m.group(1) or "none"
            j = i + 1
            while j < b and not lines[j].startswith("```"):
                j += 1
            if j >= b:
                sys.exit("check_walkthrough: error: README.md line %d: code block not closed "
                         "before <!-- /walkthrough -->" % (i + 1))
            blocks.append((kind, "\n".join(lines[i + 1:j])))
            i = j + 1
            continue
        prose.append(lines[i])
        i += 1
    if prose:
        blocks.append(("prose", "\n".join(prose)))
    if not any(k == "sh" for k, _ in blocks):
        sys.exit("check_walkthrough: error: the walkthrough has no ```sh block")
    return blocks


def decimals(s):
    s = s.replace(",", "")
    mant = re.split(r"[eE]", s)[0]
    return len(mant.split(".")[1]) if "." in mant else 0


def same(expected, printed):
    """printed equals expected to expected's precision."""
    e, p = expected.replace(",", ""), printed.replace(",", "")
    try:
        ev, pv = float(e), float(p)
    except ValueError:
        return False
    if re.search(r"[eE]", e):
        mant, ex = re.split(r"[eE]", e)
        ulp = 10.0 ** (int(ex) - decimals(mant))
    else:
        ulp = 10.0 ** (-decimals(e))
    return abs(ev - pv) <= 0.5 * ulp * (1 + 1e-9) + 1e-12 * abs(ev)


def template_re(line):
    parts, pos, nums = [], 0, []
    for m in NUM_RE.finditer(line):
        parts.append(literal(line[pos:m.start()]))
        parts.append("(" + NUM + ")")
        nums.append(m.group(0))
        pos = m.end()
    parts.append(literal(line[pos:]))
    return re.compile("".join(parts)), nums


def literal(s):
    out = []
    for piece in re.split(r"(…|\s+)", s):
        if piece == "…":
            out.append(".*?")
        elif piece and piece.isspace():
            out.append(r"\s+")
        elif piece:
            out.append(re.escape(piece))
    return "".join(out)


def check_text(block_no, template, output, errors):
    for tl in template.split("\n"):
        if not tl.strip():
            continue
        rx, nums = template_re(tl.strip())
        shaped = []
        for ol in output.split("\n"):
            m = rx.search(ol)
            if m:
                shaped.append((ol, m))
        if not shaped:
            errors.append("block %d: no printed line looks like the README's\n    README:  %s"
                          % (block_no, tl.strip()))
            continue
        if any(all(same(e, m.group(k + 1)) for k, e in enumerate(nums)) for _, m in shaped):
            continue
        ol, m = shaped[0]
        for k, e in enumerate(nums):
            if not same(e, m.group(k + 1)):
                errors.append("block %d: figure %s in the README, printed %s\n    README:  %s\n    printed: %s"
                              % (block_no, e, m.group(k + 1), tl.strip(), ol.strip()))


def main():
    args = sys.argv[1:]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = os.path.join(root, "README.md")
    binary = os.environ.get("LOLCATS_BIN", os.path.join(root, "build", "lolcats"))
    keep = show = False
    while args:
        a = args.pop(0)
        if a == "--readme" and args:
            readme = os.path.abspath(args.pop(0))
        elif a == "--bin" and args:
            binary = args.pop(0)
        elif a == "--keep":
            keep = True
        elif a == "--print":
            show = True
        else:
            sys.stderr.write(__doc__)
            sys.exit(2)
    binary = os.path.abspath(binary)
    shared = os.path.abspath(os.path.join(root, "..", "shared"))
    blocks = parse(readme)
    if not os.path.isdir(os.path.join(shared, "models")):
        print("SKIPPED: the README walkthrough (no %s: it needs the models and data)" % shared)
        return 0
    if not os.access(binary, os.X_OK):
        sys.exit("check_walkthrough: error: %s is not an executable; run make build/lolcats "
                 "or pass --bin" % binary)
    base = os.path.join(root, "build", "walkthrough")
    run = os.path.join(base, "run")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(os.path.join(run, "build"))
    os.symlink(binary, os.path.join(run, "build", "lolcats"))
    os.symlink(shared, os.path.join(base, "shared"))

    # one shell for all the sh blocks, each block's output delimited by a marker
    sh_blocks = [i for i, (k, _) in enumerate(blocks) if k == "sh"]
    script = ["set -e"]
    for n, i in enumerate(sh_blocks):
        script.append("echo '@@walkthrough-block %d@@'" % n)
        script.append(blocks[i][1])
    script.append("echo '@@walkthrough-block end@@'")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.time()
    p = subprocess.run(["sh", "-c", "\n".join(script)], cwd=run, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode("utf-8", "replace")
    pieces = re.split(r"^@@walkthrough-block (\d+|end)@@$", out, flags=re.M)
    per_block = {}
    for k in range(1, len(pieces) - 1, 2):
        if pieces[k] != "end":
            per_block[sh_blocks[int(pieces[k])]] = pieces[k + 1]
    if show:
        for i in sh_blocks:
            print("---- block %d: %s\n%s" % (i, blocks[i][1].split("\n")[0], per_block.get(i, "")))
    if p.returncode != 0:
        print(out[-4000:])
        print("check_walkthrough: FAIL: the walkthrough's commands exited %d (in %s)" % (p.returncode, run))
        return 1

    errors = []
    last_sh = None
    for i, (kind, text) in enumerate(blocks):
        if kind == "sh":
            last_sh = i
        elif kind == "text":
            if last_sh is None:
                errors.append("block %d: a ```text block before any ```sh block" % i)
            else:
                check_text(i, text, per_block.get(last_sh, ""), errors)
    printed = NUM_RE.findall(out)
    nfig = 0
    for kind, text in blocks:
        if kind != "prose":
            continue
        for m in re.finditer(r"(?<![\w.`/-])(-?[0-9]+\.[0-9]+)(?![\w`/-]|\.[0-9])", re.sub(r"`[^`]*`", "", text)):
            nfig += 1
            if not any(same(m.group(1), x) for x in printed):
                line = [l for l in text.split("\n") if m.group(1) in l][0]
                errors.append("prose: figure %s in the README is printed by no command\n    README:  %s"
                              % (m.group(1), line.strip()))
    ntext = sum(1 for k, _ in blocks if k == "text")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    if errors:
        for e in errors:
            print("FAIL: " + e)
        print("check_walkthrough: %d figure(s) of README.md differ from what the walkthrough prints"
              % len(errors))
        return 1
    print("check_walkthrough: OK: %d command block(s), %d output block(s) and %d figure(s) in the "
          "prose match, %.0f s" % (len(sh_blocks), ntext, nfig, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
