#include "client/commands.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "client/exit_codes.h"

namespace convnet::client {

absl::Span<const Command> AllCommands() {
  static const Command kCommands[] = {
      {"predict",
       "predict (--images=IDX [--labels=IDX] [--index=N] [--count=N] | FILE.pgm...) "
       "[--model=NAME] [--version=V] [--ascii] [--summary] [--json]",
       "Classifies 28x28 images with a model version (the latest by default) and prints, per\n"
       "image, the predicted class and its confidence: the output activation a3 of that class\n"
       "(the 10 outputs are independent sigmoids in [0, 1], not probabilities). With --labels,\n"
       "each prediction is marked correct or WRONG and the accuracy is printed; --summary\n"
       "prints only the accuracy. --ascii draws each image beside its prediction. PGM files\n"
       "(P5 or P2, 28x28) are read as light digits on a dark background like MNIST; --invert\n"
       "flips dark-on-light drawings. Large inputs are sent --images_per_request at a time.",
       RunPredict},
      {"train",
       "train --model=NAME [--maps=K | --init_from=NAME[/V]] [--dataset=NAME | --images=IDX "
       "--labels=IDX --index=N --count=N] [--eval_dataset=NAME|none] [--epochs=N] "
       "[--batch_size=M] [--learning_rate=ETA] [--l2=LAMBDA] [--cost=cross-entropy|quadratic] "
       "[--seed=S] [--wait] [--json]",
       "Submits a training job that produces the model's next version and prints its id. The\n"
       "training set is a server-side dataset (--dataset, default mnist, evaluated on its test\n"
       "split after every epoch) or examples sent inline from IDX files (--images/--labels).\n"
       "With --wait, follows the job: a progress bar during each epoch, a line per finished\n"
       "epoch with the test accuracy, then the outcome; exit status 4 when the job fails or is\n"
       "cancelled. Interrupting the client does not stop the job (use `cancel ID`).",
       RunTrain},
      {"watch", "watch ID [--json]",
       "Follows a submitted job to its end as train --wait does (exit status 4 when it fails or\n"
       "is cancelled).",
       RunWatch},
      {"jobs", "jobs [MODEL] [--state=STATE] [--json]",
       "Lists the training jobs the server remembers, newest first: every queued and running\n"
       "job and the most recent finished ones.",
       RunJobs},
      {"job", "job ID [--json]",
       "Shows one job: state, datasets, hyperparameters, progress, per-epoch metrics, times and\n"
       "the error of a failed job.",
       RunJob},
      {"cancel", "cancel ID [--json]",
       "Cancels a job: a queued job at once, a running one at its next mini-batch. Waits (up to\n"
       "10 s) for the job to stop and prints its state.",
       RunCancel},
      {"gradients",
       "gradients --images=IDX --labels=IDX [--index=N] [--count=N] [--model=NAME] "
       "[--version=V | --parameters_file=FILE] [--cost=cross-entropy|quadratic] [--deltas] "
       "[--json]",
       "Asks the server for the exact gradient of the mean cost over labelled examples at a\n"
       "model version (or at parameters read from a JSON file) and prints a summary: each\n"
       "example's cost and predicted class, the mean cost, the gradient's norm and largest\n"
       "entry overall and per block (w1, b1, w3, b3). --json prints the whole response,\n"
       "including every gradient entry and the per-example deltas (delta3, delta1, argmax mask).",
       RunGradients},
      {"models", "models [--json]",
       "Lists the models of the repository with their latest version: K, training set, epochs,\n"
       "last test accuracy, creation time.",
       RunModels},
      {"model", "model NAME[/VERSION] [--parameters] [--json]",
       "Shows one model's versions (or one version): how each was trained, its hyperparameters\n"
       "and per-epoch metrics. --parameters adds the parameters (summarised per block; with\n"
       "--json every value, an export usable with gradients --parameters_file).",
       RunModel},
      {"health", "health [SERVICE] [--json]",
       "Runs the standard gRPC health check (grpc.health.v1) and prints SERVING or NOT_SERVING;\n"
       "exit status 0 only when SERVING.",
       RunHealth},
      {"stats", "stats [--json]",
       "Shows the server's statistics since it started (GetServerStats): per RPC method the\n"
       "calls, errors by status code and latency p50/p99/mean in the handler; per model version\n"
       "the Predict calls and images predicted; the training jobs by state; the core thread\n"
       "pool's size and queue. --json prints the whole response.",
       RunStats},
      {"bench",
       "bench [--rpc=predict|gradients|health] [--concurrency=N] [--connections=N] "
       "[--duration=5s] [--warmup=1s] [--images_per_request=N] [--model=NAME] [--version=V] "
       "[--images=IDX] [--labels=IDX] [--index=N] [--cost=cross-entropy|quadratic] [--json]",
       "A closed-loop load generator (like ghz): keeps --concurrency calls in flight over\n"
       "--connections TCP connections for --duration (after --warmup) and prints requests/s,\n"
       "images/s, latency p50/p90/p99/max/mean (client-side, whole call) and the errors by\n"
       "status code. predict sends --images_per_request images (default 256), gradients as many\n"
       "labelled examples, taken from --images/--labels (default: the bundled MNIST test set)\n"
       "from --index on; health is the standard health check, the cheapest call (the floor).\n"
       "Each connection is driven by one client thread (gRPC's async API). Exit status 1 when\n"
       "every call failed.",
       RunBench},
  };
  return kCommands;
}

int UsageError(absl::string_view command, absl::string_view message) {
  absl::FPrintF(stderr, "error: %s: %s\n", command, message);
  for (const Command& candidate : AllCommands()) {
    if (command == candidate.name) {
      absl::FPrintF(stderr, "usage: convnet_client %s\n", candidate.synopsis);
    }
  }
  return kExitUsage;
}

}  // namespace convnet::client
