#!/usr/bin/env python3
"""qwen_tokenizer_ref.py - a small hand-made Qwen-style tokenizer.json and the
encodings tests/test_qwen.c checks, computed by an independent implementation
of the same rules. Run by hand (needs the `regex` module for \\p{L} / \\p{N}),
never in CI:

    python3 tools/qwen_tokenizer_ref.py tests/data/qwen_tokenizer.json tests/data/qwen_tok_ref.json

The tokenizer: byte-level BPE (GPT-2 byte-to-unicode map, ids 0..255 the
byte symbols), merges learned here from a small corpus (most frequent pair,
ties by first appearance), Qwen2/2.5/3's pre-tokenizer Split regex then
ByteLevel without its own regex, and the added special tokens <|endoftext|>,
<|im_start|>, <|im_end|> (matched verbatim before pre-tokenization).
Encoding here: split out the special tokens, split the rest with the regex
(the `regex` module's Unicode classes), map bytes to symbols and merge
by rank (lowest rank first, every occurrence left to right, as GPT-2's
reference encoder does).
"""
import json, sys
import regex

QWEN_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
N_MERGES = 200

CORPUS = """The quick brown fox jumps over the lazy dog. They'll say it's the best they've seen;
I'm sure we'd all agree. THE END!!! Numbers: 12345, 2024-06-01, $100.50 and 3.14159.
Hello, world! Hello again, world... the theory of the thing: there, then, these, those.
   indented line\twith\ttabs
and a blank line follows

café naïve résumé — Привет мир! 你好，世界。こんにちは。안녕하세요.
user assistant system: you are a helpful assistant. Answer the question.
"""

TESTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's DON'T or We'D",
    "'s 'S 'x can't",
    "12345 and 3.14159",
    "$100.50!!!\n\nnext",
    "a   b",
    "end   ",
    "   lead",
    "tab\there\t\tx",
    "line1\r\nline2\n\n\n  indented\n",
    "  \n\n  x",
    "?!. ...\n",
    "café naïve résumé",
    "Привет мир",
    "你好，世界。",
    "こんにちは カタカナ",
    "안녕하세요",
    "emoji 🙂👍 ok",
    "x²+y² ½",
    "٣٤٥ ١٢",
    "e-mail: a@b.com (x_y)",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more",
    "<|im_end|><|im_end|>",
    "  ",
    "\n",
    "",
]


def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()


def words(text):
    return [''.join(B2U[b] for b in w.encode('utf-8')) for w in regex.findall(QWEN_RE, text)]


def learn_merges(corpus, n):
    seqs = [list(w) for w in words(corpus)]
    merges = []
    for _ in range(n):
        counts, first = {}, {}
        for s in seqs:
            for i in range(len(s) - 1):
                p = (s[i], s[i + 1])
                counts[p] = counts.get(p, 0) + 1
                first.setdefault(p, len(first))
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], -first[p]))
        if counts[best] < 1:
            break
        merges.append(best)
        for s in seqs:
            i = 0
            while i < len(s) - 1:
                if (s[i], s[i + 1]) == best:
                    s[i:i + 2] = [s[i] + s[i + 1]]
                i += 1
    return merges


def bpe(word, ranks):
    s = list(word)
    while len(s) > 1:
        pairs = [(ranks.get((s[i], s[i + 1]), 1 << 30), i) for i in range(len(s) - 1)]
        r, _ = min(pairs)
        if r == 1 << 30:
            break
        a, b = [p for p, k in ranks.items() if k == r][0]
        out, i = [], 0
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(s[i])
                i += 1
        s = out
    return s


def encode(text, vocab, ranks, special_ids):
    ids = []
    pat = '(' + '|'.join(regex.escape(t) for t in SPECIALS) + ')'
    for part in regex.split(pat, text):
        if part in special_ids:
            ids.append(special_ids[part])
            continue
        for w in words(part):
            ids.extend(vocab[p] for p in bpe(w, ranks))
    return ids


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    merges = learn_merges(CORPUS, N_MERGES)
    vocab = {B2U[b]: b for b in range(256)}
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    special_ids = {t: len(vocab) + i for i, t in enumerate(SPECIALS)}
    tok = {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [{'id': special_ids[t], 'content': t, 'single_word': False, 'lstrip': False,
                          'rstrip': False, 'normalized': False, 'special': True} for t in SPECIALS],
        'normalizer': {'type': 'NFC'},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': QWEN_RE}, 'behavior': 'Isolated', 'invert': False},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False}]},
        'post_processor': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False,
                           'use_regex': False},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': '',
                  'end_of_word_suffix': '', 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                  'vocab': vocab, 'merges': [a + ' ' + b for a, b in merges]},
    }
    with open(sys.argv[1], 'w', encoding='utf-8') as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    ranks = {m: i for i, m in enumerate(merges)}
    cases = [{'text': t, 'ids': encode(t, vocab, ranks, special_ids)} for t in TESTS]
    with open(sys.argv[2], 'w', encoding='utf-8') as f:
        f.write('{"vocab_size": %d, "cases": [\n' % (len(vocab) + len(SPECIALS)))
        f.write(',\n'.join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write('\n]}\n')
    print('%s: %d pieces, %d merges; %s: %d cases' % (sys.argv[1], len(vocab) + len(SPECIALS), len(merges),
                                                      sys.argv[2], len(cases)))


if __name__ == '__main__':
    main()
