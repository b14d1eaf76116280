"""PyTorch side of bench/backbones.sh: inference images/s of the original backbones at their
native size, as the Rust example measures ours (same batch, median over rounds, eval mode,
no autograd). Prints one JSON line per backbone.

Usage: python backbones_torch.py BATCH ROUNDS [BACKBONE...]
"""

import json
import statistics
import sys
import time

import torch
import torchvision
from efficientnet_lite_pytorch import EfficientNet


def mobilenet_v2():
    return torchvision.models.mobilenet_v2(), 224


def efficientnet_lite(n):
    name = f"efficientnet-lite{n}"
    return EfficientNet.from_name(name), EfficientNet.get_image_size(name)


def torchvision_model(build, side):
    # init_weights=False skips the slow truncated-normal initialisation: speed does not
    # depend on the values.
    return build(weights=None, aux_logits=False, init_weights=False), side


MODELS = {
    "mobilenet-v2": mobilenet_v2,
    "inception-v3": lambda: torchvision_model(torchvision.models.inception_v3, 299),
    "googlenet": lambda: torchvision_model(torchvision.models.googlenet, 224),
    "alexnet": lambda: (torchvision.models.alexnet(weights=None), 224),
    "efficientnet-lite0": lambda: efficientnet_lite(0),
    "efficientnet-lite1": lambda: efficientnet_lite(1),
    "efficientnet-lite2": lambda: efficientnet_lite(2),
}


def main():
    batch, rounds = int(sys.argv[1]), int(sys.argv[2])
    # Backbones named after the two numbers, of those this framework has; all without names.
    wanted = sys.argv[3:] or list(MODELS)
    for name in [name for name in wanted if name in MODELS]:
        build = MODELS[name]
        model, side = build()
        model.eval()
        x = torch.randn(batch, 3, side, side)
        rates = []
        with torch.inference_mode():
            model(x)  # warm-up
            for _ in range(rounds):
                start = time.perf_counter()
                model(x)
                rates.append(batch / (time.perf_counter() - start))
        line = {
            "framework": f"pytorch-{torch.__version__}",
            "backbone": name,
            "input": side,
            "batch": batch,
            "threads": torch.get_num_threads(),
            "images_per_s": statistics.median(rates),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
