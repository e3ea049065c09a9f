#!/usr/bin/python3
"""An independent client of convnet_server: the public API called from Python.

It generates Python stubs from proto/convnet/v1/convnet.proto at test time
(protoc --python_out plus grpc_python_plugin, Debian's protobuf-compiler-grpc)
and uses Debian's python3-grpcio, so it shares no code with the C++ side.

The server under test is, in order of preference:
  --address HOST:PORT or $CONVNET_TEST_ADDRESS   a server that is already running;
  otherwise one started here on a free port with a temporary model directory,
  from --server PATH, $CONVNET_SERVER or build/server/convnet_server, with
  --data_dir the repository's data/ (the bundled "mnist" dataset).

Run:  /usr/bin/python3 tests/python/test_api.py [--address HOST:PORT] [--server PATH]
Ends with the line "N passed, N failed"; exits non-zero when a test failed.
"""

import argparse
import gzip
import importlib
import math
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PROTO_FILE = PROTO_ROOT / "convnet" / "v1" / "convnet.proto"
MNIST = REPO / "data" / "mnist"
PIXELS = 784
CLASSES = 10

# Set by main() before the tests run.
grpc = None
pb = None          # convnet.v1.convnet_pb2
pb_grpc = None     # convnet.v1.convnet_pb2_grpc
ADDRESS = None
SERVER_LOG = None


# --------------------------------------------------------------------------
# Set-up: stubs, data, server
# --------------------------------------------------------------------------

def generate_stubs(out_dir):
    """Compiles the .proto into out_dir and imports the generated modules."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None or shutil.which("protoc") is None:
        sys.exit("error: protoc and grpc_python_plugin are needed "
                 "(apt-get install protobuf-compiler protobuf-compiler-grpc)")
    subprocess.run(
        ["protoc", f"--proto_path={PROTO_ROOT}", f"--python_out={out_dir}",
         f"--grpc_python_out={out_dir}", f"--plugin=protoc-gen-grpc_python={plugin}",
         str(PROTO_FILE)],
        check=True)
    sys.path.insert(0, str(out_dir))
    importlib.invalidate_caches()
    global grpc, pb, pb_grpc
    grpc = importlib.import_module("grpc")
    pb = importlib.import_module("convnet.v1.convnet_pb2")
    pb_grpc = importlib.import_module("convnet.v1.convnet_pb2_grpc")


def read_idx(path, magic, header_ints):
    with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    header = struct.unpack(">" + "I" * header_ints, data[:4 * header_ints])
    if header[0] != magic:
        raise ValueError(f"{path}: magic {header[0]:#x}, expected {magic:#x}")
    return header, data[4 * header_ints:]


def load_mnist_split(split, limit):
    """The first `limit` (pixels, label) pairs of the bundled MNIST split."""
    prefix = "train" if split == "train" else "t10k"
    (_, count, rows, cols), images = read_idx(MNIST / f"{prefix}-images-idx3-ubyte.gz", 0x803, 4)
    (_, label_count), labels = read_idx(MNIST / f"{prefix}-labels-idx1-ubyte.gz", 0x801, 2)
    assert rows * cols == PIXELS and count == label_count
    n = min(limit, count)
    return [(images[i * PIXELS:(i + 1) * PIXELS], labels[i]) for i in range(n)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(address, seconds, process=None):
    """Waits until the server answers ListModels; fails early if it exits."""
    deadline = time.monotonic() + seconds
    last_error = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"convnet_server exited with status {process.returncode}")
        try:
            with grpc.insecure_channel(address) as channel:
                pb_grpc.ConvNetStub(channel).ListModels(pb.ListModelsRequest(), timeout=2)
            return
        except grpc.RpcError as error:
            last_error = error
            time.sleep(0.2)
    raise RuntimeError(f"no convnet server answering at {address} after {seconds}s: {last_error}")


class StartedServer:
    """A convnet_server started for this run, stopped with SIGTERM at the end."""

    def __init__(self, binary, work_dir):
        self.address = f"127.0.0.1:{free_port()}"
        self.log_path = Path(work_dir) / "server.log"
        self.log = open(self.log_path, "wb")
        model_dir = Path(work_dir) / "models"
        model_dir.mkdir()
        self.process = subprocess.Popen(
            [str(binary), f"--address={self.address}", f"--model_dir={model_dir}",
             f"--data_dir={REPO / 'data'}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def stub():
    channel = grpc.insecure_channel(
        ADDRESS, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    return channel, pb_grpc.ConvNetStub(channel)


def examples_message(pairs):
    return pb.Examples(examples=[
        pb.Example(image=pb.Image(pixels=bytes(pixels)), label=label) for pixels, label in pairs])


def hyperparameters(**overrides):
    values = dict(epochs=1, batch_size=10, learning_rate=0.5, l2=0.0,
                  cost=pb.COST_CROSS_ENTROPY, seed=7)
    values.update(overrides)
    return pb.Hyperparameters(**values)


def wait_for_job(conv, job_id, seconds=300):
    """Follows WatchTrainingJob to the end; returns (final job, epoch numbers seen)."""
    final, epochs_seen = None, []
    for update in conv.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job_id),
                                        timeout=seconds):
        kind = update.WhichOneof("update")
        if kind == "epoch":
            epochs_seen.append(update.epoch.epoch)
        elif kind == "job":
            final = update.job
    return final, epochs_seen


def sigmoid_outputs_ok(outputs):
    return len(outputs) == CLASSES and all(0.0 <= v <= 1.0 and math.isfinite(v) for v in outputs)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

class TrainPredictGradients(unittest.TestCase):
    """Trains one small model from inline examples, then uses it."""

    MODEL = "python-inline"
    TRAIN_SIZE = 2000
    EVAL_SIZE = 500
    EPOCHS = 2

    @classmethod
    def setUpClass(cls):
        cls.channel, cls.conv = stub()
        cls.train_pairs = load_mnist_split("train", cls.TRAIN_SIZE)
        cls.test_pairs = load_mnist_split("test", cls.EVAL_SIZE)
        request = pb.TrainRequest(
            model_name=cls.MODEL, feature_maps=1,
            train_examples=examples_message(cls.train_pairs),
            eval_examples=examples_message(cls.test_pairs),
            hyperparameters=hyperparameters(epochs=cls.EPOCHS, progress_every=500))
        started = time.monotonic()
        response = cls.conv.Train(request, timeout=30)
        cls.submitted = response
        cls.job, cls.epochs_seen = wait_for_job(cls.conv, response.job_id)
        cls.train_seconds = time.monotonic() - started

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_train_returns_a_job_id_at_once(self):
        self.assertTrue(self.submitted.job_id)
        self.assertEqual(self.submitted.job.job_id, self.submitted.job_id)
        self.assertIn(self.submitted.job.state, (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING,
                                                 pb.JOB_STATE_SUCCEEDED))

    def test_training_job_succeeds_and_publishes_a_version(self):
        self.assertIsNotNone(self.job, "the watch stream ended without a final job")
        self.assertEqual(self.job.state, pb.JOB_STATE_SUCCEEDED, self.job.error)
        self.assertGreaterEqual(self.job.version, 1)
        self.assertEqual(self.job.train_examples, self.TRAIN_SIZE)
        self.assertEqual(self.job.eval_examples, self.EVAL_SIZE)
        print(f"\n  trained {self.TRAIN_SIZE} examples x {self.EPOCHS} epochs in "
              f"{self.train_seconds:.2f}s; test accuracy "
              f"{self.job.epochs[-1].test_accuracy:.3f}", file=sys.stderr)

    def test_watch_stream_delivers_every_epoch_in_order(self):
        self.assertEqual(self.epochs_seen, list(range(1, self.EPOCHS + 1)))
        self.assertEqual([e.epoch for e in self.job.epochs], list(range(1, self.EPOCHS + 1)))

    def test_get_training_job_agrees_with_the_stream(self):
        job = self.conv.GetTrainingJob(pb.GetTrainingJobRequest(job_id=self.job.job_id),
                                       timeout=10)
        self.assertEqual(job.state, pb.JOB_STATE_SUCCEEDED)
        self.assertEqual(job.version, self.job.version)

    def test_trained_model_beats_chance_by_far(self):
        self.assertGreater(self.job.epochs[-1].test_accuracy, 0.6)

    def test_predict_answers_each_image_with_the_trained_version(self):
        pairs = self.test_pairs[:100]
        response = self.conv.Predict(pb.PredictRequest(
            model_name=self.MODEL, images=[pb.Image(pixels=bytes(p)) for p, _ in pairs]),
            timeout=30)
        self.assertEqual(response.model_name, self.MODEL)
        self.assertEqual(response.version, self.job.version)
        self.assertEqual(len(response.predictions), len(pairs))
        correct = 0
        for prediction, (_, label) in zip(response.predictions, pairs):
            self.assertTrue(sigmoid_outputs_ok(prediction.outputs), list(prediction.outputs))
            outputs = list(prediction.outputs)
            self.assertEqual(prediction.predicted_class, outputs.index(max(outputs)))
            correct += prediction.predicted_class == label
        self.assertGreater(correct, 60)

    def test_predict_float_pixels_equal_byte_pixels(self):
        pixels, _ = self.test_pairs[0]
        by_bytes = self.conv.Predict(pb.PredictRequest(
            model_name=self.MODEL, images=[pb.Image(pixels=bytes(pixels))]), timeout=10)
        by_floats = self.conv.Predict(pb.PredictRequest(
            model_name=self.MODEL,
            images=[pb.Image(values=pb.FloatPixels(values=[p / 255.0 for p in pixels]))]),
            timeout=10)
        for a, b in zip(by_bytes.predictions[0].outputs, by_floats.predictions[0].outputs):
            self.assertAlmostEqual(a, b, places=5)

    def test_gradients_have_the_documented_shapes(self):
        pixels, label = self.test_pairs[0]
        response = self.conv.GetGradients(pb.GetGradientsRequest(
            examples=[pb.Example(image=pb.Image(pixels=bytes(pixels)), label=label)],
            model=pb.ModelVersionRef(model_name=self.MODEL), cost=pb.COST_CROSS_ENTROPY,
            include_deltas=True), timeout=30)
        k = 1
        self.assertEqual(response.feature_maps, k)
        self.assertEqual(response.version, self.job.version)
        self.assertEqual(len(response.gradient), 25 * k + k + 1440 * k + 10)
        self.assertEqual(len(response.costs), 1)
        self.assertAlmostEqual(response.mean_cost, response.costs[0], places=6)
        deltas = response.deltas[0]
        self.assertEqual(len(deltas.a3), CLASSES)
        self.assertEqual(len(deltas.delta3), CLASSES)
        self.assertEqual(len(deltas.delta1), k * 576)
        self.assertEqual(len(deltas.argmax_mask), k * 576)
        # One routed position per 2x2 pool window.
        self.assertEqual(sum(1 for b in deltas.argmax_mask if b), k * 144)
        # Cross-entropy: delta3 = a3 - y (BP1).
        for j in range(CLASSES):
            self.assertAlmostEqual(deltas.delta3[j], deltas.a3[j] - (1.0 if j == label else 0.0),
                                   places=5)

    def test_gradients_match_finite_differences_of_the_mean_cost(self):
        exported = self.conv.GetModel(pb.GetModelRequest(
            model_name=self.MODEL, version=self.job.version, include_parameters=True),
            timeout=30)
        parameters = exported.model.versions[0].parameters
        values = list(parameters.values)
        examples = [pb.Example(image=pb.Image(pixels=bytes(p)), label=l)
                    for p, l in self.test_pairs[:5]]

        def gradients_at(vector):
            return self.conv.GetGradients(pb.GetGradientsRequest(
                examples=examples,
                parameters=pb.Parameters(feature_maps=parameters.feature_maps, values=vector),
                cost=pb.COST_CROSS_ENTROPY), timeout=30)

        at_inline = gradients_at(values)
        at_model = self.conv.GetGradients(pb.GetGradientsRequest(
            examples=examples, model=pb.ModelVersionRef(model_name=self.MODEL,
                                                        version=self.job.version),
            cost=pb.COST_CROSS_ENTROPY), timeout=30)
        self.assertEqual(list(at_inline.gradient), list(at_model.gradient))

        # Central differences on the largest entries of each block; float32
        # arithmetic on the server limits the agreement to a few digits.
        k = parameters.feature_maps
        blocks = {"w1": (0, 25 * k), "b1": (25 * k, k), "w3": (26 * k, 1440 * k),
                  "b3": (1466 * k, 10)}
        h = 1e-2
        for name, (begin, size) in blocks.items():
            block = at_inline.gradient[begin:begin + size]
            i = begin + max(range(size), key=lambda j: abs(block[j]))
            plus, minus = list(values), list(values)
            plus[i] += h
            minus[i] -= h
            numeric = (gradients_at(plus).mean_cost - gradients_at(minus).mean_cost) / (2 * h)
            analytic = at_inline.gradient[i]
            with self.subTest(block=name, index=i):
                self.assertAlmostEqual(numeric, analytic,
                                       delta=2e-3 + 2e-2 * abs(analytic),
                                       msg=f"{name}: numeric {numeric} vs analytic {analytic}")


class TrainOnBundledDataset(unittest.TestCase):
    """One epoch over the bundled "mnist" dataset, by name."""

    def test_one_epoch_over_mnist_succeeds_with_a_good_accuracy(self):
        channel, conv = stub()
        with channel:
            response = conv.Train(pb.TrainRequest(
                model_name="python-mnist", feature_maps=1, train_dataset="mnist",
                eval_dataset="mnist", hyperparameters=hyperparameters(epochs=1)), timeout=30)
            job, epochs = wait_for_job(conv, response.job_id)
        self.assertEqual(job.state, pb.JOB_STATE_SUCCEEDED, job.error)
        self.assertEqual(job.train_dataset, "mnist")
        self.assertEqual(job.train_examples, 60000)
        self.assertEqual(job.eval_examples, 10000)
        self.assertEqual(epochs, [1])
        self.assertGreater(job.epochs[0].test_accuracy, 0.85)


class Errors(unittest.TestCase):
    """The server refuses bad requests with precise codes."""

    @classmethod
    def setUpClass(cls):
        cls.channel, cls.conv = stub()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def assert_code(self, call, request, code, fragment):
        with self.assertRaises(grpc.RpcError) as raised:
            call(request, timeout=10)
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        self.assertIn(fragment, raised.exception.details())

    def test_predict_unknown_model_is_not_found(self):
        self.assert_code(self.conv.Predict, pb.PredictRequest(
            model_name="no-such-model", images=[pb.Image(pixels=bytes(PIXELS))]),
            grpc.StatusCode.NOT_FOUND, "no-such-model")

    def test_predict_wrong_pixel_count_is_invalid_argument(self):
        self.assert_code(self.conv.Predict, pb.PredictRequest(
            model_name="no-such-model", images=[pb.Image(pixels=bytes(PIXELS - 1))]),
            grpc.StatusCode.INVALID_ARGUMENT, "783")

    def test_train_unknown_dataset_is_not_found(self):
        self.assert_code(self.conv.Train, pb.TrainRequest(
            model_name="python-errors", feature_maps=1, train_dataset="no-such-dataset",
            hyperparameters=hyperparameters()),
            grpc.StatusCode.NOT_FOUND, "no-such-dataset")

    def test_gradients_label_out_of_range_is_invalid_argument(self):
        self.assert_code(self.conv.GetGradients, pb.GetGradientsRequest(
            examples=[pb.Example(image=pb.Image(pixels=bytes(PIXELS)), label=10)],
            parameters=pb.Parameters(feature_maps=1, values=[0.0] * 1476),
            cost=pb.COST_QUADRATIC),
            grpc.StatusCode.INVALID_ARGUMENT, "label")


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("CONVNET_TEST_ADDRESS"),
                        help="a running server (default: start one)")
    parser.add_argument("--server", default=os.environ.get(
        "CONVNET_SERVER", str(REPO / "build" / "server" / "convnet_server")),
                        help="the convnet_server binary to start when --address is not given")
    args = parser.parse_args()

    global ADDRESS
    work_dir = tempfile.mkdtemp(prefix="convnet-python-test-")
    server = None
    result = None
    setup_failed = False
    try:
        generate_stubs(Path(work_dir) / "stubs")
        if args.address:
            ADDRESS = args.address
            wait_until_serving(ADDRESS, 30)
        else:
            if not os.access(args.server, os.X_OK):
                raise RuntimeError(f"no convnet_server at {args.server} (build it, or pass "
                                   "--server or --address)")
            server = StartedServer(args.server, work_dir)
            ADDRESS = server.address
            wait_until_serving(ADDRESS, 60, server.process)
        print(f"testing the convnet server at {ADDRESS}", file=sys.stderr)
        suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        setup_failed = True
    finally:
        if server is not None:
            status = server.stop()
            if status != 0:
                # SIGTERM must stop the server cleanly (exit 0).
                print(f"error: convnet_server exited with status {status}; its log:",
                      file=sys.stderr)
                sys.stderr.write(server.log_path.read_text(errors="replace")[-4000:])
                setup_failed = True
        shutil.rmtree(work_dir, ignore_errors=True)

    passed = failed = skipped = 0
    if result is not None:
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        passed = result.testsRun - failed - skipped
    if setup_failed:
        failed += 1
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    sys.stderr.flush()
    print(summary, flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
