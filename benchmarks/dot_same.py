"""One name, one number, across a change: the DOT and JSON of many views, here and at a git ref.

    python -m benchmarks.dot_same [--base main] [--big]

Draws every kind of view (token, layer, layer at a token, head, cell, whole document,
matrix uses, expanded groups, every level, edge grads, a neighbourhood) of the default
model on 'christopher' and of a small 2-layer model on 'anna' (--big: also 4 x 64 on
'anna', 2.2 M nodes, minutes), hashes each view's DOT and its JSON (every digit the
picture and panel show), then runs this same file against `--base` (its tree from
`git archive`, imported first) and lists each view whose bytes differ. Exit 1 if any do.
A speed-up of view building (issue 25) must leave every one byte-identical.
"""

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZ = [chr(c) for c in range(97, 123)]
MODELS = (('default', 1, 16, 'christopher'), ('2x16', 2, 16, 'anna'))
BIG = ('4x64', 4, 64, 'anna')


def view_queries(trace):
    """(name, build_view keyword arguments): every kind of view, on `trace`'s own names."""
    last = trace.positions()[-1]
    layers = sorted({s[1] for s in trace.scopes if s[1] is not None and isinstance(s[1], int)}) or [0]
    mats = trace.param_names
    out = [('document', {'document': True})]
    out += [(f'token {p}', {'token': p}) for p in trace.positions()]
    out += [(f'token {last} {lv}', {'token': last, 'level': lv}) for lv in ('scalar', 'vector', 'block')]
    out += [(f'token {last} edge grads', {'token': last, 'edge_grads': True}),
            (f'token {last} expand attn', {'token': last, 'expand': [f'pos{last}/layer0/attn/*']}),
            (f'token {last} expand rmsnorm', {'token': last, 'expand': [f'pos{last}/layer0/attn/rmsnorm']}),
            ('token 1 expand mlp', {'token': 1, 'expand': ['pos1/layer0/mlp/*']}),
            ('node loss', {'node': 'loss'}), ('node loss depth 3', {'node': 'loss', 'depth': 3})]
    for layer in layers:
        out += [(f'layer {layer}', {'layer': layer}), (f'layer {layer} at {last}', {'layer': layer, 'token': last}),
                (f'layer {layer} at 0', {'layer': layer, 'token': 0}),
                (f'layer {layer} head 1', {'layer': layer, 'head': 1}),
                (f'layer {layer} head 0 at {last}', {'layer': layer, 'head': 0, 'token': last})]
    for m in mats:
        out.append((f'matrix {m}', {'param': m}))
    out += [(f'cell {mats[1]}[0][0]', {'param': f'{mats[1]}[0][0]'}),
            (f'cell {mats[-1]}[1][2] depth 2', {'param': f'{mats[-1]}[1][2]', 'depth': 2})]
    return out


def model_trace(layers, embd, doc):
    from microgpt.data import Tokenizer
    from microgpt.model import GPTConfig, init_params
    from microgpt.recording.step import record_step
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=layers, n_embd=embd)
    return record_step(init_params(config, random.Random(42)), config, tok, doc)


def hashes(big):
    """{model/view: sha256 of its DOT + '|' + its JSON}, drawn by the graphviz_export imported."""
    from graphviz_export.view import build_view
    out = {}
    for name, layers, embd, doc in MODELS + ((BIG,) if big else ()):
        trace = model_trace(layers, embd, doc)
        for view, q in view_queries(trace):
            v = build_view(trace, **q)
            out[f'{name} {view}'] = hashlib.sha256((v.source + '|' + v.to_json()).encode()).hexdigest()
    return out


def at_ref(ref, big):
    """hashes() drawn by the tree of git `ref` (this file copied in, that tree first on the path)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(['git', 'archive', ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', tmp], input=archive, check=True)
        shutil.copy(__file__, Path(tmp) / 'benchmarks' / 'dot_same.py')
        r = subprocess.run([sys.executable, '-m', 'benchmarks.dot_same', '--hashes'] + (['--big'] if big else []),
                           cwd=tmp, capture_output=True, text=True, env={'PYTHONPATH': tmp, 'PATH': '/usr/bin:/bin'})
        if r.returncode:
            raise SystemExit(r.stderr.strip().splitlines()[-1])
        return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--base', default='main')
    ap.add_argument('--big', action='store_true')
    ap.add_argument('--hashes', action='store_true', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hashes:
        print(json.dumps(hashes(args.big)))
        return
    import graphviz_export
    assert Path(graphviz_export.__file__).resolve().is_relative_to(ROOT), graphviz_export.__file__
    mine, base = hashes(args.big), at_ref(args.base, args.big)
    differ = [k for k in mine if mine[k] != base.get(k)]
    print(f"{len(mine)} views, {len(mine) - len(differ)} byte-identical to {args.base}, {len(differ)} differ")
    for k in differ:
        print(f"  differs: {k}")
    sys.exit(1 if differ or len(base) != len(mine) else 0)


if __name__ == '__main__':
    main()
