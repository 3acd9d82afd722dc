"""The microgpt transformer: config, parameters, forward pass and loss.

A function of an explicit `GPTConfig`, explicit parameters (a dict of named
matrices of Values) and an explicit `random.Random`; nothing lives at module
level. Every floating-point operation is the reference's, in the reference's
order. The `scope(...)` blocks only tag nodes for the trace; they cost nothing
when nothing is recorded.
"""

from dataclasses import asdict, dataclass

from .engine import Value
from .errors import InputError
from .tags import scope


class ConfigError(InputError):
    """A model configuration or token list the model cannot run."""


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 27   # characters + 1 for BOS (a-z + BOS on the names data)
    n_layer: int = 1       # transformer blocks
    n_embd: int = 16       # width of the residual stream
    block_size: int = 16   # longest context: positions 0..block_size-1
    n_head: int = 4        # attention heads; each sees n_embd // n_head dims

    def __post_init__(self):
        for name in ('vocab_size', 'n_layer', 'n_embd', 'block_size', 'n_head'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.vocab_size < 2:
            raise ConfigError(f"vocab_size must be at least 2 (one character + BOS), got {self.vocab_size}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    def to_dict(self):
        return asdict(self)


def param_shapes(config):
    """{name: (rows, cols)} in creation order: the public parameter names."""
    V, C, T = config.vocab_size, config.n_embd, config.block_size
    shapes = {'wte': (V, C), 'wpe': (T, C), 'lm_head': (V, C)}
    for i in range(config.n_layer):
        shapes[f'layer{i}.attn_wq'] = (C, C)
        shapes[f'layer{i}.attn_wk'] = (C, C)
        shapes[f'layer{i}.attn_wv'] = (C, C)
        shapes[f'layer{i}.attn_wo'] = (C, C)
        shapes[f'layer{i}.mlp_fc1'] = (4 * C, C)
        shapes[f'layer{i}.mlp_fc2'] = (C, 4 * C)
    return shapes


def init_params(config, rng, std=0.08):
    """Each matrix row by row of Value(rng.gauss(0, std)), in `param_shapes` order."""
    return {name: [[Value(rng.gauss(0, std)) for _ in range(cols)] for _ in range(rows)]
            for name, (rows, cols) in param_shapes(config).items()}


def flat_params(params):
    """All parameter Values in the reference's order (matrix, row, column)."""
    return [p for matrix in params.values() for row in matrix for p in row]


def linear(x, w):
    """y[i] = sum_j w[i][j] * x[j]; Python's sum, left to right from the int 0."""
    return [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w]


def softmax(logits):
    """exp(l - max) / sum; the max is a plain number, so it is a constant node."""
    max_val = max(val.data for val in logits)
    exps = [(val - max_val).exp() for val in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    """x * (mean(x^2) + 1e-5) ** -0.5, elementwise."""
    ms = sum(xi * xi for xi in x) / len(x)
    scale = (ms + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def gpt(params, config, token_id, pos_id, keys, values):
    """Logits (vocab_size Values) for one position; appends to the KV caches.

    keys[layer] / values[layer]: lists of the n_embd-vectors of every earlier position.
    """
    n_head, head_dim = config.n_head, config.head_dim
    with scope(pos=pos_id, block='embed'):
        tok_emb = params['wte'][token_id]   # (n_embd,)
        pos_emb = params['wpe'][pos_id]     # (n_embd,)
        with scope(role='embed'):
            x = [t + p for t, p in zip(tok_emb, pos_emb)]
        with scope(role='rmsnorm'):
            x = rmsnorm(x)

    for li in range(config.n_layer):
        with scope(pos=pos_id, layer=li, block='attn'):
            x_residual = x
            with scope(role='rmsnorm'):
                x = rmsnorm(x)
            with scope(role='q'):
                q = linear(x, params[f'layer{li}.attn_wq'])   # (n_embd,)
            with scope(role='k'):
                k = linear(x, params[f'layer{li}.attn_wk'])
            with scope(role='v'):
                v = linear(x, params[f'layer{li}.attn_wv'])
            keys[li].append(k)
            values[li].append(v)
            x_attn = []
            for h in range(n_head):
                hs = h * head_dim
                q_h = q[hs:hs + head_dim]                            # (head_dim,)
                k_h = [ki[hs:hs + head_dim] for ki in keys[li]]     # (pos+1, head_dim)
                v_h = [vi[hs:hs + head_dim] for vi in values[li]]
                with scope(head=h, role='attn_logits'):
                    attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim**0.5
                                   for t in range(len(k_h))]       # (pos+1,)
                with scope(head=h, role='attn_weights'):
                    attn_weights = softmax(attn_logits)
                with scope(head=h, role='head_out'):
                    head_out = [sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h)))
                                for j in range(head_dim)]          # (head_dim,)
                x_attn.extend(head_out)
            with scope(role='attn_out'):
                x = linear(x_attn, params[f'layer{li}.attn_wo'])
            with scope(role='residual'):
                x = [a + b for a, b in zip(x, x_residual)]

        with scope(pos=pos_id, layer=li, block='mlp'):
            x_residual = x
            with scope(role='rmsnorm'):
                x = rmsnorm(x)
            with scope(role='fc1'):
                x = linear(x, params[f'layer{li}.mlp_fc1'])        # (4*n_embd,)
            with scope(role='relu'):
                x = [xi.relu() for xi in x]
            with scope(role='fc2'):
                x = linear(x, params[f'layer{li}.mlp_fc2'])        # (n_embd,)
            with scope(role='residual'):
                x = [a + b for a, b in zip(x, x_residual)]

    with scope(pos=pos_id, block='lm_head', role='logits'):
        logits = linear(x, params['lm_head'])                      # (vocab_size,)
    return logits


def check_tokens(config, tokens):
    """Raise ConfigError naming the first token id outside the vocabulary."""
    for i, t in enumerate(tokens):
        if not isinstance(t, int) or not 0 <= t < config.vocab_size:
            raise ConfigError(f"token {t!r} at index {i} is outside the vocabulary 0..{config.vocab_size - 1}")


def doc_loss(params, config, tokens):
    """Mean next-token loss of one document, tokens = [BOS] + chars + [BOS].

    Returns (loss, position_losses). Positions past block_size are not used,
    exactly as in the reference: n = min(block_size, len(tokens) - 1).
    """
    if len(tokens) < 2:
        raise ConfigError(f"a document needs at least 2 tokens ([BOS] + [BOS]), got {len(tokens)}")
    check_tokens(config, tokens)
    n = min(config.block_size, len(tokens) - 1)
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    losses = []
    for pos_id in range(n):
        token_id, target_id = tokens[pos_id], tokens[pos_id + 1]
        logits = gpt(params, config, token_id, pos_id, keys, values)
        with scope(pos=pos_id, block='loss'):
            with scope(role='probs'):
                probs = softmax(logits)
            with scope(role='loss'):
                loss_t = -probs[target_id].log()
        losses.append(loss_t)
    with scope(block='loss', role='loss'):
        loss = (1 / n) * sum(losses)
    return loss, losses


def check_model(params, config, tokenizer=None):
    """Raise ConfigError unless `params` has exactly the matrices of `config`
    (names and shapes) and `tokenizer` (when given) has config.vocab_size tokens:
    a smaller tokenizer would silently read the wrong embedding rows."""
    if tokenizer is not None and getattr(tokenizer, 'vocab_size', None) != config.vocab_size:
        raise ConfigError(f"the tokenizer has {getattr(tokenizer, 'vocab_size', '?')} tokens but "
                          f"config.vocab_size is {config.vocab_size}; use the tokenizer the model was made with")
    if not isinstance(params, dict):
        raise ConfigError(f"params must be a dict of named matrices, got {type(params).__name__}")
    shapes = param_shapes(config)
    missing = [n for n in shapes if n not in params]
    extra = [n for n in params if n not in shapes]
    if missing or extra:
        parts = [missing and f"missing {', '.join(map(str, missing[:5]))}",
                 extra and f"unexpected {', '.join(map(str, extra[:5]))}"]
        raise ConfigError("params do not match the config: " + '; '.join(filter(None, parts)))
    for name, (rows, cols) in shapes.items():
        m = params[name]
        if len(m) != rows or any(len(row) != cols for row in m):
            got = f"{len(m)}x{len(m[0]) if len(m) else 0}"
            raise ConfigError(f"params[{name!r}] is {got}; config {config.to_dict()} needs {rows}x{cols}")
