"""Adam, exactly as the reference updates each parameter."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AdamConfig:
    lr: float = 0.01      # peak learning rate, decayed linearly to 0 over num_steps
    beta1: float = 0.85   # first-moment decay
    beta2: float = 0.99   # second-moment decay
    eps: float = 1e-8     # added to sqrt(v_hat)


class Adam:
    """Per-parameter moment buffers m, v over a flat list of parameter Values."""

    def __init__(self, params, config=AdamConfig()):
        self.params = params
        self.config = config
        self.m = [0.0] * len(params)
        self.v = [0.0] * len(params)

    def step(self, step, num_steps):
        """Update every parameter from its .grad, then reset grads to 0.

        lr_t = lr * (1 - step/num_steps); bias correction uses (step + 1).
        """
        c = self.config
        beta1, beta2, eps_adam = c.beta1, c.beta2, c.eps
        lr_t = c.lr * (1 - step / num_steps)
        m, v = self.m, self.v
        for i, p in enumerate(self.params):
            m[i] = beta1 * m[i] + (1 - beta1) * p.grad
            v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2
            m_hat = m[i] / (1 - beta1 ** (step + 1))
            v_hat = v[i] / (1 - beta2 ** (step + 1))
            p.data -= lr_t * m_hat / (v_hat ** 0.5 + eps_adam)
            p.grad = 0
