"""Breadcrumbs: document › position › layer › block › head › role › scalar, each with the
state it opens (a script's trace: script › function › line › scalar). Pure functions of a
Trace and a view state: the page draws them and never decides where they lead.
"""

import re

import graphviz_export.web.explorer.state as st
from microgpt.recording import FIELDS, scope_path

from .state import BLOCKS


def crumbs(trace, state):
    """document › position › layer › block › head › role › scalar, each with the state it opens."""
    where = dict.fromkeys(FIELDS)
    view = state['view']
    if view in ('token', 'layer', 'head'):
        where['pos'] = state['token']
        if view == 'token' and state['token'] is None and trace.positions():
            where['pos'] = trace.positions()[-1]
        if view in ('layer', 'head'):
            where['layer'] = state['layer'] if state['layer'] is not None else 0
        if view == 'head':
            where['head'] = state['head']
            where['block'] = 'attn'
    # where the user went in: the last expansion, or the block a click opened (focus)
    opened = state['expand'][-1] if state['expand'] else state['focus']
    if opened:
        for part in opened.split('/'):
            m = re.fullmatch(r'(pos|layer|head)(\d+)', part)
            if m:
                where[m.group(1)] = int(m.group(2))
            elif part in BLOCKS:
                where['block'] = part
            elif '*' not in part and '?' not in part:
                where['role'] = part
    # the node view's centre is a crumb of its own; a selection (sel) goes after it
    centre = None
    drawn_as_node = trace.source is not None and view in ('doc', 'token', 'layer', 'head')  # a script: the loss
    if view == 'node' or drawn_as_node:
        centre = trace.meta.get('loss_id') if drawn_as_node or state['node'] == 'loss' else state['node']
        if centre is not None and not 0 <= centre < len(trace):
            centre = None
    scalar = state['sel'] if state['sel'] is not None and state['sel'] < len(trace) else None
    anchor = scalar if scalar is not None else centre
    if anchor is not None:
        s = trace.scope_of(anchor)
        if s[2] != 'params':
            where.update({f: v for f, v in zip(FIELDS, s) if v is not None})
    keep = {k: state[k] for k in st.KEEP}

    def at(**kw):
        return st.to_json(dict(st.DEFAULTS, **keep, **kw))

    def ends(crumbs):
        for level, i in (('node', centre), ('scalar', scalar)):
            if i is not None and (level == 'node' or i != centre):
                crumbs.append({'level': level, 'label': trace.name(i),
                               'to': at(view='node', node=i, depth=2, level='auto', sel=i)})
        return crumbs

    if trace.source is not None:
        return ends(script_crumbs(trace, state, anchor, at))
    doc = trace.meta.get('doc', 'trace')
    crumbs = [{'level': 'document', 'label': f"'{doc}'", 'to': at(view='doc', level='block')}]
    p, layer, block, head, role = (where[f] for f in FIELDS)
    if p is None:
        return ends(crumbs)
    strs = trace.meta.get('token_strs') or []
    text = f" '{strs[p]}'\u2192'{strs[p + 1]}'" if p + 1 < len(strs) else ''
    crumbs.append({'level': 'position', 'label': f'pos {p}{text}', 'to': at(view='token', token=p)})
    if layer is not None:
        crumbs.append({'level': 'layer', 'label': f'layer {layer}',
                       'to': at(view='layer', layer=layer, token=p, level='block')})
    if block is not None:
        focus = scope_path((p, layer, block, None, None))
        to = (at(view='layer', layer=layer, token=p, level='vector', focus=focus) if layer is not None
              else at(view='token', token=p, level='vector', focus=focus))
        crumbs.append({'level': 'block', 'label': block, 'to': to})
    if head is not None:
        crumbs.append({'level': 'head', 'label': f'head {head}',
                       'to': at(view='head', layer=layer, head=head, token=p, level='auto')})
    if role is not None:
        path = scope_path((p, layer, block, head, role))
        if head is not None:
            to = at(view='head', layer=layer, head=head, token=p, level='vector', expand=(path,))
        elif layer is not None:
            to = at(view='layer', layer=layer, token=p, level='vector', expand=(path,))
        else:
            to = at(view='token', token=p, level='vector', expand=(path,))
        crumbs.append({'level': 'role', 'label': role, 'to': to})
    return ends(crumbs)


def script_crumbs(trace, state, scalar, at):
    """script › function › line for a trace recorded from a script (the caller adds the node)."""
    rf = trace.meta.get('recorded_from', {})
    crumbs = [{'level': 'script', 'label': str(rf.get('script', 'script')),
               'to': at(view='node', node='loss', depth=2, level='auto')}]
    func, line = state['function'], state['line']
    if scalar is not None and trace.source_of(scalar) is not None:
        src = trace.source_of(scalar)
        func = src.funcs[-1] if src.funcs else func
        line = src.line
    if state['view'] == 'function' and func is None:
        func = state['function']
    if func:
        crumbs.append({'level': 'function', 'label': f'{func}()', 'to': at(view='function', function=func,
                                                                        level='auto')})
    if line is not None and (state['view'] == 'line' or scalar is not None):
        crumbs.append({'level': 'line', 'label': f'line {line}', 'to': at(view='line', line=line, level='auto')})
    return crumbs
