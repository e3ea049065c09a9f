// The server-side datasets: the subdirectories of --data_dir that hold the four
// MNIST IDX files (plain or .gz; core/dataset.h). A dataset's name is its
// directory's name and matches [a-z0-9][a-z0-9_-]* (names.h); it is never used
// as a path beyond <data_dir>/<name>.
//
// Datasets are loaded lazily: the first request that names a dataset loads it
// (about a second for MNIST) and every later request shares the loaded copy
// for the life of the server. A directory added while the server runs is
// found by the first request that names it. Failed loads are not cached.
#ifndef CONVNET_SERVER_DATASET_REGISTRY_H_
#define CONVNET_SERVER_DATASET_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/dataset.h"

namespace convnet::server {

// A subdirectory of data_dir that is not a usable dataset, and why.
struct SkippedDataset {
  std::string folder;  // its name in data_dir
  std::string reason;  // e.g. "bad name: ..." or "missing t10k-labels-idx1-ubyte[.gz]"
};

// What data_dir holds now.
struct DatasetScan {
  std::vector<std::string> available;   // dataset names, sorted
  std::vector<SkippedDataset> skipped;  // sorted by folder; hidden folders are not listed
};

// "Fashion (bad name: ...), emnist (missing t10k-labels-idx1-ubyte[.gz])".
std::string DescribeSkipped(const std::vector<SkippedDataset>& skipped);

class DatasetRegistry {
 public:
  // `data_dir` need not exist (then no dataset is found).
  explicit DatasetRegistry(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  DatasetRegistry(const DatasetRegistry&) = delete;
  DatasetRegistry& operator=(const DatasetRegistry&) = delete;

  const std::string& data_dir() const { return data_dir_; }

  // Names of the dataset directories present now, sorted. Loads nothing.
  std::vector<std::string> List() const;

  // The dataset directories present now and the other subdirectories with the
  // reason each is skipped (a bad name; missing or unreadable IDX files).
  // Loads nothing; an unlistable or missing data_dir gives an empty scan.
  DatasetScan Scan() const;

  // The dataset `name` (its training and test splits), loading it on first
  // use. `field` names the request field in messages. INVALID_ARGUMENT for a
  // bad name; NOT_FOUND when there is no such dataset (listing the available
  // ones and the skipped folders with their reasons); DATA_LOSS naming the
  // file when the dataset's files are corrupt.
  absl::StatusOr<std::shared_ptr<const MnistDirectory>> Get(absl::string_view field,
                                                            absl::string_view name);

 private:
  const std::string data_dir_;
  absl::Mutex load_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one load at a time
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const MnistDirectory>, std::less<>> loaded_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_DATASET_REGISTRY_H_
