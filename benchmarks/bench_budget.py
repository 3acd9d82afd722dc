"""The resource guard's estimate against the real node count: prints figures,
asserts nothing.

    python -m benchmarks.bench_budget

For a few configs and document lengths: the recorded node count, the estimate
(microgpt.recording.budget.estimate_nodes), their ratio, the peak Python heap
per node (tracemalloc) and the recording speed in nodes per second. These are
the figures behind BYTES_PER_NODE and NODES_PER_SECOND.
"""

import random
import time
import tracemalloc

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.budget import estimate_nodes
from microgpt.recording.step import record_step

AZ = [chr(c) for c in range(ord('a'), ord('z') + 1)]
CASES = [  # n_embd, n_head, n_layer, block_size, doc
    (16, 4, 1, 16, 'emma'), (16, 4, 1, 16, 'christopherxyzab'), (8, 2, 1, 8, 'emma'),
    (32, 4, 2, 16, 'emma'), (16, 1, 1, 16, 'emma'), (32, 4, 1, 32, 'a' * 30),
]


def main():
    tok = Tokenizer(AZ)
    print(f"{'config (C,H,L,T)':18s} {'doc':>4s} {'nodes':>9s} {'estimate':>9s} {'est/real':>8s} "
          f"{'B/node':>7s} {'nodes/s':>8s}")
    for C, H, L, T, doc in CASES:
        config = GPTConfig(vocab_size=tok.vocab_size, n_embd=C, n_head=H, n_layer=L, block_size=T)
        params = init_params(config, random.Random(1))
        t0 = time.perf_counter()
        record_step(params, config, tok, doc, max_nodes=None)          # speed: without tracemalloc
        secs = time.perf_counter() - t0
        tracemalloc.start()
        trace = record_step(params, config, tok, doc, max_nodes=None)  # memory
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        est = estimate_nodes(config, len(doc) + 1)
        print(f"{str((C, H, L, T)):18s} {len(doc):4d} {len(trace):9,d} {est:9,d} {est / len(trace):8.3f} "
              f"{peak / len(trace):7.0f} {len(trace) / secs:8,.0f}")


if __name__ == '__main__':
    main()
