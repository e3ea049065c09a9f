"""convnet's core against PyTorch (CPU) on the same network, in one run.

Run through bench/compare_pytorch, which installs python3-torch and builds the
driver; directly:

    /usr/bin/python3 bench/compare_pytorch.py --driver build/bench/compare_driver [--json out.json]

Both sides start from the same parameters (written by `compare_driver init` in
the flat layout of NETWORK.md), use the same thread count and batch size and,
for training, the same order of examples (written by `compare_driver order`,
the trainer's own Random(seed) shuffle). The PyTorch model is the network of
NETWORK.md:

    Conv2d(1, K, 5) -> sigmoid -> MaxPool2d(2) -> Flatten -> Linear(144K, 10) -> sigmoid

with C_x = sum over the 10 outputs of binary cross-entropy on the sigmoid
(binary_cross_entropy_with_logits(z3, y, reduction="sum")), the mean over the
mini-batch, and plain SGD (lr = eta, no momentum, no weight decay). Flatten
takes the pooled maps in (f, j, k) order, so Linear.weight [10][144K] is w3
[10][K][12][12] as stored.
"""

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Data and parameters


def read_idx(path):
    """An MNIST IDX file (plain or .gz) as a numpy array."""
    if not os.path.exists(path):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_mnist(directory):
    def part(images, labels):
        x = read_idx(os.path.join(directory, images)).astype(np.float32) / np.float32(255.0)
        y = read_idx(os.path.join(directory, labels)).astype(np.int64)
        return torch.from_numpy(x).unsqueeze(1).contiguous(), torch.from_numpy(y)

    train = part("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    test = part("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return train, test


def parameter_count(k):
    return 25 * k + k + 10 * k * 144 + 10


class Net(torch.nn.Module):
    """NETWORK.md's network; forward returns z3 (the logits)."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.conv = torch.nn.Conv2d(1, k, 5)
        self.fc = torch.nn.Linear(144 * k, 10)

    def forward(self, x):
        a1 = torch.sigmoid(self.conv(x))
        a2 = F.max_pool2d(a1, 2)  # ties: first maximum, as NETWORK.md
        return self.fc(a2.flatten(1))  # (f, j, k) order

    def load_flat(self, flat):
        """Loads a flat vector in NETWORK.md's layout: w1 [K][5][5], b1 [K], w3 [10][K][12][12], b3 [10]."""
        k = self.k
        flat = torch.as_tensor(np.asarray(flat, dtype=np.float32))
        assert flat.numel() == parameter_count(k), (flat.numel(), parameter_count(k))
        o = 0
        with torch.no_grad():
            for tensor, n in ((self.conv.weight, 25 * k), (self.conv.bias, k),
                              (self.fc.weight, 1440 * k), (self.fc.bias, 10)):
                tensor.copy_(flat[o:o + n].view_as(tensor))
                o += n

    def flat(self):
        """The parameters in NETWORK.md's layout."""
        return torch.cat([t.detach().reshape(-1) for t in
                          (self.conv.weight, self.conv.bias, self.fc.weight, self.fc.bias)])

    def flat_grad(self):
        """dC/dparams after backward(), in NETWORK.md's layout."""
        return torch.cat([t.grad.reshape(-1) for t in
                          (self.conv.weight, self.conv.bias, self.fc.weight, self.fc.bias)])


def make_model(k, flat, dtype=torch.float32):
    model = Net(k)
    model.load_flat(flat)
    return model.to(dtype)


def one_hot(labels):
    return F.one_hot(labels, 10).to(torch.float32)


# ---------------------------------------------------------------------------
# The PyTorch side of each measurement


def torch_train_epoch(model, opt, x, y, order, batch):
    """One pass over x in `order`, mini-batches of `batch`, an SGD step after each."""
    xs, ys = x[order], y[order]
    n = xs.shape[0]
    for start in range(0, n, batch):
        xb, yb = xs[start:start + batch], ys[start:start + batch]
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(model(xb), yb, reduction="sum")
        (loss / xb.shape[0]).backward()
        opt.step()


def torch_accuracy(model, x, labels, batch=1000):
    correct = 0
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch):
            a3 = torch.sigmoid(model(x[start:start + batch]))
            correct += int((a3.argmax(1) == labels[start:start + batch]).sum())
    return correct / x.shape[0]


def torch_predictions(model, x, batch=1000):
    out = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch):
            out.append(torch.sigmoid(model(x[start:start + batch])).argmax(1))
    return torch.cat(out)


def measure_steps(step, min_seconds):
    """Items/s of `step` (one mini-batch or one inference batch; it returns the
    items it processed): a warm-up of
    about a tenth of min_seconds, then steps until min_seconds have passed.
    Stopping on time rather than after whole passes keeps the run short when
    PyTorch is slow (it is at 2 threads on a loaded machine)."""
    for deadline_seconds in (min_seconds / 10, min_seconds):
        items, start = 0, time.perf_counter()
        while True:
            items += step()
            elapsed = time.perf_counter() - start
            if elapsed >= deadline_seconds:
                break
    return items / elapsed


def torch_train_rate(k, flat, x, y, order, batch, lr, min_seconds):
    """Samples/s of SGD over x in `order` (wrapping around), mini-batches of `batch`."""
    model = make_model(k, flat)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xs, ys = x[order], y[order]
    n = xs.shape[0]
    position = 0

    def step():
        nonlocal position
        xb, yb = xs[position:position + batch], ys[position:position + batch]
        position = position + batch if position + batch < n else 0
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(model(xb), yb, reduction="sum")
        (loss / xb.shape[0]).backward()
        opt.step()
        return xb.shape[0]

    return measure_steps(step, min_seconds)


def torch_predict_rate(k, flat, x, batch, min_seconds):
    """Images/s of a3 and argmax for batches of `batch` images of x (wrapping around)."""
    model = make_model(k, flat)
    n = x.shape[0] // batch * batch
    position = 0

    def step():
        nonlocal position
        with torch.inference_mode():
            torch.sigmoid(model(x[position:position + batch])).argmax(1)
        position = position + batch if position + batch < n else 0
        return batch

    return measure_steps(step, min_seconds)


# ---------------------------------------------------------------------------
# The convnet side: the driver


class Driver:
    def __init__(self, path, workdir, data):
        self.path, self.workdir, self.data = path, workdir, data

    def run(self, command, **flags):
        args = [self.path, command] + [f"--{name}={value}" for name, value in flags.items()]
        if self.data:
            args.append(f"--data={self.data}")
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()
        return json.loads(out) if out else None

    def file(self, name):
        return os.path.join(self.workdir, name)

    def init(self, k, seed):
        path = self.file(f"init-k{k}-s{seed}.f32")
        self.run("init", k=k, seed=seed, out=path)
        flat = np.fromfile(path, dtype="<f4")
        assert flat.size == parameter_count(k)
        return path, flat

    def order(self, n, epochs, seed):
        path = self.file(f"order-n{n}-e{epochs}-s{seed}.u32")
        self.run("order", n=n, epochs=epochs, seed=seed, out=path)
        return path, torch.from_numpy(np.fromfile(path, dtype="<u4").astype(np.int64)).view(epochs, n)


# ---------------------------------------------------------------------------


def gradient_check(driver, k, params_path, flat, order_path, order, x, y, m):
    """convnet's ComputeGradient against torch autograd for one mini-batch."""
    grad_path = driver.file(f"grad-k{k}.f32")
    info = driver.run("gradient", k=k, params=params_path, order=order_path, examples=m, out=grad_path)
    g_convnet = torch.from_numpy(np.fromfile(grad_path, dtype="<f4").astype(np.float64))
    idx = order[:m]
    result = {"k": k, "examples": m, "convnet_mean_cost": info["mean_cost"]}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        model = make_model(k, flat, dtype)
        z3 = model(x[idx].to(dtype))
        loss = F.binary_cross_entropy_with_logits(z3, y[idx].to(dtype), reduction="sum") / m
        loss.backward()
        g = model.flat_grad().to(torch.float64)
        diff = g_convnet - g
        result[f"torch_{name}_mean_cost"] = float(loss)
        result[f"rel_l2_vs_torch_{name}"] = float(diff.norm() / g.norm())
        result[f"max_abs_vs_torch_{name}"] = float(diff.abs().max())
        result[f"max_rel_vs_torch_{name}"] = float(diff.abs().max() / g.abs().max())
    return result


def median(values):
    return statistics.median(values) if values else float("nan")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--driver", required=True, help="path of the compare_driver binary")
    p.add_argument("--data", default=os.path.join(here, "..", "data", "mnist"), help="MNIST directory")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--threads", default="1,2", help="thread counts to measure, comma-separated")
    p.add_argument("--repeats", type=int, default=5, help="measurements per side and case (the median is reported)")
    p.add_argument("--min-seconds", type=float, default=0.5, help="each measurement lasts at least this long")
    p.add_argument("--k1-train", type=int, default=10000, help="training slice for K=1 speed")
    p.add_argument("--k20-train", type=int, default=2000, help="training slice for K=20 speed")
    p.add_argument("--infer-images", type=int, default=9984, help="test images per inference pass")
    p.add_argument("--accuracy-epochs", type=int, default=2, help="epochs of the accuracy run (K=1, batch 10)")
    p.add_argument("--accuracy-train", type=int, default=60000, help="training examples of the accuracy run")
    p.add_argument("--seed", type=int, default=1, help="initialisation and shuffle seed")
    p.add_argument("--lr", type=float, default=0.5, help="SGD learning rate eta")
    p.add_argument("--skip-speed", action="store_true", help="only the gradient check and the accuracy run")
    p.add_argument("--skip-accuracy", action="store_true", help="only the gradient check and the speed table")
    args = p.parse_args()
    threads_list = [int(t) for t in args.threads.split(",") if t]
    data_dir = os.path.abspath(args.data)

    torch.set_num_interop_threads(1)
    results = {
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
                    "numpy": np.__version__, "python": platform.python_version(),
                    "torch_parallel": [line.strip() for line in torch.__config__.parallel_info().splitlines()
                                       if "OpenMP" in line or "backend" in line or "MKL" in line]},
        "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "load_average_at_start": os.getloadavg(),
    }
    print(f"machine: {os.cpu_count()} CPUs, {results['machine']['cpu']}; torch {torch.__version__}", flush=True)

    (x_train, l_train), (x_test, l_test) = load_mnist(data_dir)
    y_train = one_hot(l_train)

    with tempfile.TemporaryDirectory(prefix="compare_pytorch.") as workdir:
        driver = Driver(os.path.abspath(args.driver), workdir, data_dir)
        params = {k: driver.init(k, args.seed) for k in (1, 20)}

        # 1. Gradient of one mini-batch (the first 10 examples of epoch 1's order).
        order_path, order = driver.order(60000, 1, args.seed)
        results["gradient_check"] = []
        for k in (1, 20):
            g = gradient_check(driver, k, params[k][0], params[k][1], order_path, order[0], x_train, y_train, 10)
            results["gradient_check"].append(g)
            ok = g["rel_l2_vs_torch_float32"] < 1e-5
            print(f"gradient check K={k} m=10: convnet vs torch autograd rel L2 error "
                  f"{g['rel_l2_vs_torch_float32']:.2e} (float32 torch), {g['rel_l2_vs_torch_float64']:.2e} "
                  f"(float64 torch), max |diff| {g['max_abs_vs_torch_float32']:.1e}; cost "
                  f"{g['convnet_mean_cost']:.7f} vs {g['torch_float32_mean_cost']:.7f} -> "
                  f"{'OK' if ok else 'MISMATCH'} (tol 1e-5)", flush=True)

        # 2. Speed: the two sides alternate, one measurement each per round, so
        # that load from other users of the machine falls on both.
        rows = []
        if not args.skip_speed:
            cases = [("train", 1, 10, args.k1_train), ("train", 20, 10, args.k20_train),
                     ("predict", 1, 256, args.infer_images), ("predict", 20, 256, args.infer_images)]
            for threads in threads_list:
                torch.set_num_threads(threads)
                for kind, k, batch, n in cases:
                    path, flat = params[k]
                    convnet, pytorch = [], []
                    if kind == "train":
                        _, slice_order = driver.order(n, 1, args.seed)
                        slice_order = slice_order[0]
                    for _ in range(args.repeats):
                        if kind == "train":
                            r = driver.run("train", k=k, params=path, n=n, batch=batch, lr=args.lr, threads=threads,
                                           seed=args.seed, repeats=1, min_seconds=args.min_seconds)
                            convnet.append(r["median"])
                            pytorch.append(torch_train_rate(k, flat, x_train, y_train, slice_order, batch, args.lr,
                                                            args.min_seconds))
                        else:
                            r = driver.run("predict", k=k, params=path, n=n, batch=batch, threads=threads,
                                           repeats=1, min_seconds=args.min_seconds)
                            convnet.append(r["median"])
                            pytorch.append(torch_predict_rate(k, flat, x_test[:n], batch, args.min_seconds))
                    row = {"kind": kind, "k": k, "batch": batch, "threads": threads, "examples": n,
                           "unit": "samples/s" if kind == "train" else "images/s",
                           "convnet": convnet, "pytorch": pytorch,
                           "convnet_median": median(convnet), "pytorch_median": median(pytorch)}
                    row["ratio"] = row["convnet_median"] / row["pytorch_median"]
                    rows.append(row)
                    print(f"{kind:7s} K={k:<2d} batch={batch:<3d} threads={threads}: convnet "
                          f"{row['convnet_median']:>11,.0f}  pytorch {row['pytorch_median']:>9,.0f} {row['unit']:9s}"
                          f"  ratio {row['ratio']:6.1f}x", flush=True)
        results["speed"] = rows

        # 3. Accuracy after a few epochs from the same start, same order.
        if not args.skip_accuracy:
            k, n, epochs = 1, args.accuracy_train, args.accuracy_epochs
            torch.set_num_threads(1)
            _, acc_order = driver.order(n, epochs, args.seed)
            final_path = driver.file("final-convnet.f32")
            t0 = time.perf_counter()
            c = driver.run("train", k=k, params=params[k][0], n=n, batch=10, lr=args.lr, threads=1,
                           seed=args.seed, epochs=epochs, evaluate="true", out=final_path)
            convnet_seconds = time.perf_counter() - t0
            model = make_model(k, params[k][1])
            opt = torch.optim.SGD(model.parameters(), lr=args.lr)
            torch_epochs = []
            t0 = time.perf_counter()
            for e in range(epochs):
                torch_train_epoch(model, opt, x_train[:n], y_train[:n], acc_order[e], 10)
                torch_epochs.append({"epoch": e + 1, "test_accuracy": torch_accuracy(model, x_test, l_test)})
            torch_seconds = time.perf_counter() - t0
            # Cross-checks: convnet's final parameters evaluated by torch, and
            # how far the two trained models drifted apart.
            final_convnet = np.fromfile(final_path, dtype="<f4")
            convnet_in_torch = make_model(k, final_convnet)
            final_torch = model.flat().numpy()
            pred_c = torch_predictions(convnet_in_torch, x_test)
            pred_t = torch_predictions(model, x_test)
            acc = {
                "k": k, "train_examples": n, "batch": 10, "lr": args.lr, "epochs": epochs,
                "convnet": c["epochs"], "pytorch": torch_epochs,
                "convnet_seconds": convnet_seconds, "pytorch_seconds": torch_seconds,
                "convnet_final_params_accuracy_in_torch": torch_accuracy(convnet_in_torch, x_test, l_test),
                "test_prediction_agreement": float((pred_c == pred_t).double().mean()),
                "final_params_max_abs_diff": float(np.abs(final_convnet - final_torch).max()),
                "final_params_rel_l2_diff": float(np.linalg.norm(final_convnet - final_torch) /
                                                  np.linalg.norm(final_torch)),
            }
            results["accuracy"] = acc
            for ce, te in zip(c["epochs"], torch_epochs):
                print(f"accuracy K=1 epoch {ce['epoch']}: convnet {ce['test_accuracy']:.4f}  "
                      f"pytorch {te['test_accuracy']:.4f}  (difference "
                      f"{abs(ce['test_accuracy'] - te['test_accuracy']) * 100:.2f} points)", flush=True)
            print(f"  convnet's final parameters evaluated by torch: {acc['convnet_final_params_accuracy_in_torch']:.4f};"
                  f" the two models agree on {acc['test_prediction_agreement'] * 100:.2f}% of test images;"
                  f" final parameters differ by rel L2 {acc['final_params_rel_l2_diff']:.2e}", flush=True)

    results["load_average_at_end"] = os.getloadavg()
    # Final table.
    print()
    print(f"load average (1, 5, 15 min) at start {results['load_average_at_start']}, "
          f"at end {results['load_average_at_end']} on {os.cpu_count()} CPUs")
    print(f"{'case':<26s} {'threads':>7s} {'convnet':>14s} {'pytorch':>12s} {'ratio':>8s}")
    for r in rows:
        name = f"{'training' if r['kind'] == 'train' else 'inference'} K={r['k']} batch={r['batch']}"
        print(f"{name:<26s} {r['threads']:>7d} {r['convnet_median']:>14,.0f} {r['pytorch_median']:>12,.0f} "
              f"{r['ratio']:>7.1f}x")
    if rows:
        print(f"(medians of {args.repeats}; training in samples/s, inference in images/s)")
    if "accuracy" in results:
        a = results["accuracy"]
        print(f"test accuracy after {a['epochs']} epochs (K=1, {a['train_examples']:,} examples, batch 10, "
              f"eta {a['lr']}, same start and order): "
              f"convnet {a['convnet'][-1]['test_accuracy']:.4f}, pytorch {a['pytorch'][-1]['test_accuracy']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        print(f"results written to {args.json}")
    bad = [g for g in results["gradient_check"] if not g["rel_l2_vs_torch_float32"] < 1e-5]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
