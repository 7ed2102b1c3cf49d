"""PyTorch peer of `advprune profile`: PGD-10 adversarial-training throughput on this CPU.

Same work per batch as advprune's benchmark: random start in the L-inf ball, `steps` PGD steps
(forward + input gradient each, eval-mode batch norm as in our attacks), then one training
forward/backward and an SGD step (momentum 0.9, weight decay 5e-4). Synthetic data, warm-up
batches first, median of the measured batches. Usage:
    python3 scripts/bench_pytorch.py [--arch smallcnn|resnet18] [--batch-size 128] [--batches 5]
"""
import argparse, json, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 32, 3)
        self.conv3, self.conv4 = nn.Conv2d(32, 64, 3), nn.Conv2d(64, 64, 3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(1024, 200), nn.Linear(200, 200), nn.Linear(200, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        layers, cin = [], 64
        for i, c in enumerate([64, 128, 256, 512]):
            layers.append(nn.Sequential(BasicBlock(cin, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)))
            cin = c
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(512, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(F.avg_pool2d(x, 4).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="smallcnn", choices=["smallcnn", "resnet18"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, shape, eps = (SmallCNN(), (1, 28, 28), 0.1) if args.arch == "smallcnn" else (ResNet18(), (3, 32, 32), 8 / 255)
    alpha = eps / 4
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.batch_size, *shape)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        model.eval()
        delta = (torch.rand_like(x) * 2 - 1) * eps
        for _ in range(args.steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
            (g,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
        model.train()
        opt.zero_grad()
        F.cross_entropy(model((x + delta).clamp(0, 1)), y).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.batches):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(), "arch": args.arch,
                      "batchSize": args.batch_size, "imagesPerSecond": args.batch_size / median, "secondsPerBatch": median}))


if __name__ == "__main__":
    main()
