"""One call for `gradcheck`: record a step (optionally under a fault), run the node-
level check, the parameter-level check and the health report, and confirm the
first wrong node by replay; or the same for a saved trace, without the parameter
check (it needs the model): both give a `Diagnosis`, reported and drawn the same way.

    d = diagnose(params, config, tok, 'emma', fault='relu-flip', sample=200)
    d = diagnose_trace(Trace.load('mlp.json'), scope='*/mlp/*')
    print(d.format())           # the readable report
    d.ok, d.to_dict()           # exit status, --json
    d.highlight(), d.notes()    # for the picture: {node id: reason}, [health flag]
    d.first                     # NodeFailure nearest the loss, or None

The parts are the library's own (microgpt.checks.nodes, .gradcheck, .health,
.faults); this module only runs them in the right order: the fault, if any, is
in force for the recorded step and the parameter check alike, and is removed
before anything is reported.
"""

from contextlib import nullcontext
from dataclasses import dataclass

from ..recording.step import record_step
from .faults import inject
from .findings import format_node_report
from .health import format_health_table, health_report
from .nodes import ATOL, REL_EPS, RTOL, check_trace
from .params import ATOL as PARAM_ATOL
from .params import EPS, check_params, format_param_table
from .params import RTOL as PARAM_RTOL


@dataclass
class Diagnosis:
    trace: object                 # the recorded (or loaded) Trace
    nodes: object                 # NodeCheckResult, or None if not run
    params: object                # ParamCheckResult, or None if not run
    health: object                # HealthReport, or None if not run
    fault: object = None          # the injected Fault, or None

    @property
    def ok(self):
        """Both checks passed (health flags are advice, not failures)."""
        return all(r is None or r.ok for r in (self.nodes, self.params))

    @property
    def first(self):
        return self.nodes.first if self.nodes is not None else None

    def highlight(self):
        return self.nodes.highlight() if self.nodes is not None else {}

    def notes(self):
        return self.health.flags if self.health is not None else []

    def to_dict(self):
        return {'ok': self.ok, 'doc': self.trace.meta.get('doc'), 'loss': self.trace.loss,
                'fault': self.fault.to_dict() if self.fault else None,
                'nodes': self.nodes.to_dict() if self.nodes is not None else None,
                'params': self.params.to_dict() if self.params is not None else None,
                'health': self.health.to_dict() if self.health is not None else None}

    def format(self, limit=20):
        parts = []
        if self.fault:
            parts.append(f"fault injected: {self.fault.name} ({self.fault.description})")
        if self.nodes is not None:
            parts.append(format_node_report(self.nodes, limit))
            if self.nodes.dloss:
                parts.append('d loss/d node by replaying the forward: ' + '; '.join(
                    f"{self.trace.names().name_id(r['node'])} grad {r['grad']:.6g}, replay {r['numeric']:.6g} "
                    f"({'agrees' if r['ok'] else 'DISAGREES'})" for r in self.nodes.dloss))
        if self.params is not None:
            parts.append(format_param_table(self.params, limit))
        if self.health is not None:
            parts.append(format_health_table(self.health, only_flagged=True))
        parts.append('gradcheck: ' + ('ok' if self.ok else 'FAIL'))
        return '\n\n'.join(parts)


AUTO_SAMPLE = 50   # parameters the parameter check draws when none are selected (~2 s on the default model)


def diagnose(params, config, tokenizer, doc, *, fault=None, nodes=True, select=None, sample='auto', seed=0,
             param_check=True, health=True, only=None, scope=None, confirm=True,
             rel_eps=REL_EPS, rtol=RTOL, atol=ATOL, eps=EPS, param_rtol=PARAM_RTOL, param_atol=PARAM_ATOL,
             progress=None):
    """Record `doc`'s step and check it; returns a `Diagnosis`.

    fault: a name from microgpt.faults.FAULTS (or None). select / sample / seed:
    which parameters the parameter check covers (gradcheck.select_cells);
    sample='auto' is AUTO_SAMPLE random cells when nothing is selected and every
    selected cell otherwise, sample=None all of them; param_check=False skips it. only: node ids, or scope: a scope-path glob
    ('pos3/*', '*/mlp/*'), to limit the node check. confirm: replay d loss / d node
    at the first failing node and its inputs (a few replays). Tolerances as in
    microgpt.checks.nodes (rel_eps, rtol, atol) and microgpt.checks.params (eps,
    param_rtol, param_atol). progress(done, total): after each parameter checked.
    """
    if sample == 'auto':
        sample = AUTO_SAMPLE if select is None else None
    with inject(fault) if fault else nullcontext() as f:
        trace = record_step(params, config, tokenizer, doc)
        pres = (check_params(params, config, tokenizer, doc, select=select, sample=sample, seed=seed,
                             eps=eps, rtol=param_rtol, atol=param_atol, progress=progress)
                if param_check else None)
    nres = _check_nodes(trace, only, scope, confirm, rel_eps, rtol, atol, eps, param_rtol, param_atol) if nodes else None
    return Diagnosis(trace=trace, nodes=nres, params=pres, health=health_report(trace) if health else None, fault=f)


def diagnose_trace(trace, *, scope=None, only=None, health=True, confirm=True, rel_eps=REL_EPS, rtol=RTOL,
                   atol=ATOL, eps=EPS, param_rtol=PARAM_RTOL, param_atol=PARAM_ATOL):
    """The `Diagnosis` of a saved trace (a step of the port's, or of a user's script):
    the node check, its confirmation by replay and the health report, as `diagnose`
    makes them; the parameter check needs the model and is not run (params=None)."""
    nres = _check_nodes(trace, only, scope, confirm, rel_eps, rtol, atol, eps, param_rtol, param_atol)
    return Diagnosis(trace=trace, nodes=nres, params=None, health=health_report(trace) if health else None)


def _check_nodes(trace, only, scope, confirm, rel_eps, rtol, atol, eps, param_rtol, param_atol):
    """The node check of `trace` (limited to `only` ids and/or the `scope` glob), and d loss /
    d node replayed at the first failing node and its inputs when `confirm`."""
    if scope is not None:
        only = trace.nodes_matching(scope) if only is None else sorted(set(only) & set(trace.nodes_matching(scope)))
    nres = check_trace(trace, only=only, rel_eps=rel_eps, rtol=rtol, atol=atol)
    if confirm and nres.first is not None:
        probe = [nres.first.node] + [c for c in trace.children(nres.first.node) if trace.op_name(c) != 'const']
        extra = check_trace(trace, local=False, sums=False, dloss=probe, rtol=rtol, atol=atol,
                            dloss_eps=eps, dloss_rtol=param_rtol, dloss_atol=param_atol)
        nres.dloss = extra.dloss
        nres.checked['dloss'] = extra.checked['dloss']
        nres.skipped.extend(extra.skipped)
        nres.seconds += extra.seconds
    return nres


def node_check_data(trace):
    """The node check of `trace` as plain data (NodeCheckResult.to_dict: every failure with its
    node, kind, found and expected values, nearest the loss first): what `explore` hands the
    explorer to mark failing nodes in the page (the exporter never imports the checks)."""
    return check_trace(trace).to_dict()
