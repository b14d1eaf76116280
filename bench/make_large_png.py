"""Makes 16-bit 3000 x 3000 grayscale PNGs, the size and depth of original chest X-rays.

Each is a real 512 px image upscaled (bicubic) to full scale, with mild Gaussian noise so the
file compresses like a detector image rather than a smooth upscale.
Usage: make_large_png.py OUT_DIR SOURCE_PNG...
"""

import pathlib
import sys

import numpy as np
from PIL import Image

SIDE = 3000


def main():
    out_dir = pathlib.Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for source in sys.argv[2:]:
        target = out_dir / (pathlib.Path(source).stem + "_3000_16bit.png")
        if target.exists():
            continue
        gray = Image.open(source).convert("F").resize((SIDE, SIDE), Image.BICUBIC)
        values = np.asarray(gray, dtype=np.float64) * 257 + rng.normal(0, 40, (SIDE, SIDE))
        pixels = np.clip(values, 0, 65535).astype(np.uint16)
        Image.fromarray(pixels).save(target)
        print(target)


if __name__ == "__main__":
    main()
