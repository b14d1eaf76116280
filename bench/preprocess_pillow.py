"""Pillow + NumPy peer of cxr's preprocessing, for bench/preprocess.sh.

The same work as `cargo run --example preprocess_throughput`: open the file, convert to gray
(8-bit 'L', or 32-bit float for 16-bit images so no precision is lost), resize to 299 x 299
with Pillow's antialiasing BILINEAR, scale to [0, 1] as float32, and stack into 3 x H x W.

Usage: preprocess_pillow.py [--processes N] [--repeat N] [--dump FILE] IMAGE...
Prints one JSON line: images, seconds, images_per_s, processes.
"""

import argparse
import json
import multiprocessing
import time

import numpy as np
from PIL import Image

SIZE = (299, 299)


def preprocess(path):
    with Image.open(path) as image:
        if image.mode.startswith("I"):
            # 16-bit gray ('I;16' or 'I'): resize in float, then scale the small result.
            resized = image.convert("F").resize(SIZE, Image.BILINEAR)
            gray = np.asarray(resized, dtype=np.float32) / np.float32(65535)
        else:
            resized = image.convert("L").resize(SIZE, Image.BILINEAR)
            gray = np.asarray(resized, dtype=np.float32) / np.float32(255)
    return np.stack([gray, gray, gray])


def preprocess_in_worker(path):
    """Pool task: the tensor stays in the worker. A real loader would ship it back to the parent
    (pickled through a pipe, about 1 MB each); leaving that out makes this Pillow's best case."""
    preprocess(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dump", help="write the first tensor as raw little-endian f32 (CHW)")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    work = args.images * args.repeat

    # Tensors are dropped as they are made, as a data loader hands them on.
    if args.processes > 1:
        with multiprocessing.Pool(args.processes) as pool:
            pool.map(preprocess_in_worker, args.images[: args.processes])  # start the workers
            started = time.perf_counter()
            pool.map(preprocess_in_worker, work, chunksize=4)
            seconds = time.perf_counter() - started
    else:
        started = time.perf_counter()
        for path in work:
            preprocess(path)
        seconds = time.perf_counter() - started

    if args.dump:
        preprocess(args.images[0]).astype("<f4").tofile(args.dump)
    print(json.dumps({
        "images": len(work),
        "seconds": round(seconds, 4),
        "images_per_s": round(len(work) / seconds, 2),
        "processes": args.processes,
    }))


if __name__ == "__main__":
    main()
