"""PyTorch definitions of advprune's architectures with the same state_dict names, for the
peer benchmark (`bench_pytorch.py`) and the interchange check (`Tests/interop/`).
`ResNet18(width, channels)` takes the channel counts a compacted checkpoint's `channels` metadata
lists (group -> count; groups not listed are the published width times `width`);
`SmallCNN(widths)` its four convs' and first two linear layers' outputs (a compacted one's are
narrower; `bench_autoattack.build_model` reads them from the weights)."""
import torch.nn as nn, torch.nn.functional as F


class SmallCNN(nn.Module):
    # widths: conv1-conv4's output channels and fc1-fc2's outputs (a compacted model's are smaller).
    def __init__(self, widths=(32, 32, 64, 64, 200, 200)):
        super().__init__()
        c1, c2, c3, c4, f1, f2 = widths
        self.conv1, self.conv2 = nn.Conv2d(1, c1, 3), nn.Conv2d(c1, c2, 3)
        self.conv3, self.conv4 = nn.Conv2d(c2, c3, 3), nn.Conv2d(c3, c4, 3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * c4, f1), nn.Linear(f1, f2), nn.Linear(f2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class BasicBlock(nn.Module):
    def __init__(self, cin, mid, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, width=1.0, channels=None):
        channels = channels or {}
        super().__init__()
        c = lambda group, published: channels.get(group, max(1, round(published * width)))
        self.conv1 = nn.Conv2d(3, c("stream1", 64), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c("stream1", 64))
        cin = c("stream1", 64)
        for stage, published in enumerate([64, 128, 256, 512], start=1):
            blocks = []
            for b in range(2):
                cout = c(f"stream{stage}", published)
                blocks.append(BasicBlock(cin, c(f"layer{stage}.{b}.conv1", published), cout, 2 if stage > 1 and b == 0 else 1))
                cin = cout
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(cin, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(F.avg_pool2d(x, 4).flatten(1))
