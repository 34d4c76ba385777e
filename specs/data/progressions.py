"""Write ``progressions.csv``: a tiny token corpus for the KerasHub example specs (nothing downloaded).

Each row is a sequence of 12 token ids from a vocabulary of 32 that counts
up by a fixed step modulo 32 (``5 7 9 11 ...``), with one token of the first
half replaced by noise; ``next`` is the token that continues it and
``pattern`` names its step. ``specs/tiny_gpt.yaml`` learns to predict
``next``, ``specs/tiny_bert.yaml`` to classify ``pattern``.

Run ``python specs/data/progressions.py`` to write it again (the same file: the
noise comes from a fixed seed).
"""

from __future__ import annotations

import csv
import os
import random

VOCAB = 32
LENGTH = 12
STEPS = {"step1": 1, "step2": 2, "step3": 3}
COPIES = 4


def rows() -> list[list[object]]:
    """Every start and step, ``COPIES`` times each with its own noise, in a fixed shuffled order."""
    rng = random.Random(0)
    out: list[list[object]] = []
    for pattern, step in STEPS.items():
        for start in range(VOCAB):
            for _ in range(COPIES):
                tokens = [(start + i * step) % VOCAB for i in range(LENGTH + 1)]
                tokens[rng.randrange(LENGTH // 2)] = rng.randrange(VOCAB)
                out.append([*tokens[:LENGTH], tokens[LENGTH], pattern])
    rng.shuffle(out)
    return out


def main() -> None:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progressions.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*(f"t{i}" for i in range(LENGTH)), "next", "pattern"])
        writer.writerows(rows())


if __name__ == "__main__":
    main()
