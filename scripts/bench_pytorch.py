"""PyTorch peer of `advprune profile`: PGD-10 adversarial-training throughput on this CPU.

Same work per batch as advprune's benchmark: random start in the L-inf ball, `steps` PGD steps
(forward + input gradient each, eval-mode batch norm as in our attacks), then one training
forward/backward and an SGD step (momentum 0.9, weight decay 5e-4). Synthetic data, warm-up
batches first, median of the measured batches. Usage:
    python3 scripts/bench_pytorch.py [--arch smallcnn|resnet18] [--batch-size 128] [--batches 5] [--device cuda]
On a GPU (--device cuda) the time of a batch includes a synchronisation at its end, and cuDNN
may use TF32 tensor cores for convolutions (PyTorch's default); --strict-fp32 forbids that, for
the same arithmetic as advprune's float32 kernels.
"""
import argparse, json, statistics, time
import torch, torch.nn.functional as F
from torch_models import ResNet18, SmallCNN


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="smallcnn", choices=["smallcnn", "resnet18"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--strict-fp32", action="store_true", help="on CUDA: no TF32 in convolutions or matrix products")
    args = ap.parse_args()
    if args.strict_fp32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    device = torch.device(args.device)
    model, shape, eps = (SmallCNN(), (1, 28, 28), 0.1) if args.arch == "smallcnn" else (ResNet18(), (3, 32, 32), 8 / 255)
    model = model.to(device)
    alpha = eps / 4
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.batch_size, *shape, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

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
    sync()
    times = []
    for _ in range(args.batches):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "device": str(device), "threads": torch.get_num_threads(), "arch": args.arch,
                      "batchSize": args.batch_size, "strictFp32": args.strict_fp32, "imagesPerSecond": args.batch_size / median, "secondsPerBatch": median}))


if __name__ == "__main__":
    main()
