"""One DataLoader epoch over files for the side-by-side benchmark.

Usage: dataloader.py ROOT NAMES_FILE FILE_SIZE SEED
Prints {"samples": N, "bytes": B, "seconds": S} where S covers the epoch only
(worker start-up included, interpreter start-up and the torch import not).
"""
import json
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Dataset


class Files(Dataset):
    def __init__(self, root, names, size):
        self.root, self.names, self.size = root, names, size

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        with open(os.path.join(self.root, self.names[i]), "rb") as f:
            data = f.read()
        if len(data) != self.size:
            raise IOError("%s: %d bytes, want %d" % (self.names[i], len(data), self.size))
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def main():
    root, names_file, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(names_file) as f:
        names = [l.strip() for l in f if l.strip()]
    loader = DataLoader(Files(root, names, size), batch_size=32, shuffle=True, num_workers=4,
                        generator=torch.Generator().manual_seed(seed))
    samples = nbytes = 0
    start = time.perf_counter()
    for batch in loader:
        samples += batch.shape[0]
        nbytes += batch.numel()
    seconds = time.perf_counter() - start
    print(json.dumps({"samples": samples, "bytes": nbytes, "seconds": seconds}))


if __name__ == "__main__":
    main()
