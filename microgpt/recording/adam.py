"""Adam's step on one parameter, as the numbers a panel shows (graphviz_export.steps.update).

The reference's expressions in its order (microgpt/optim.py, Adam.step), so each
figure is what Adam.step computes for that parameter on that step, bit for bit;
the exporter reads them here and never imports the optimizer.
"""

from ..optim import AdamConfig

REFERENCE = AdamConfig()     # the reference's lr, betas and eps


def learning_rate(step, num_steps, config=REFERENCE):
    """lr_t of the 0-based `step` of a run whose rate decays linearly to 0 over `num_steps`."""
    return config.lr * (1 - step / num_steps)


def adam_cell(grad, m0, v0, data, step, lr_t, config=REFERENCE):
    """(m, v, m_hat, v_hat, step_size, new data) of one parameter: moments m0, v0 before
    the 0-based `step`, its grad and value, the step's learning rate lr_t."""
    beta1, beta2, eps_adam = config.beta1, config.beta2, config.eps
    m = beta1 * m0 + (1 - beta1) * grad
    v = beta2 * v0 + (1 - beta2) * _square(grad)
    m_hat = m / (1 - beta1 ** (step + 1))
    v_hat = v / (1 - beta2 ** (step + 1))
    size = lr_t * m_hat / (v_hat ** 0.5 + eps_adam)
    return m, v, m_hat, v_hat, size, data - size


def _square(x):
    """x ** 2 as the reference writes it; inf where it overflows (Python's float ** raises
    OverflowError there, where the reference's run would have stopped: a panel shows inf)."""
    try:
        return x ** 2
    except OverflowError:
        return float('inf')
