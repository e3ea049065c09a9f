#include "server/dataset_registry.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "server/log.h"
#include "server/names.h"

namespace convnet::server {

namespace fs = std::filesystem;

std::vector<std::string> DatasetRegistry::List() const { return Scan().available; }

DatasetScan DatasetRegistry::Scan() const {
  DatasetScan scan;
  if (data_dir_.empty()) return scan;
  std::error_code ec;
  fs::directory_iterator it(data_dir_, ec);
  if (ec) return scan;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    std::error_code type_ec;
    if (absl::StartsWith(name, ".") || !entry.is_directory(type_ec)) continue;  // not a candidate
    if (absl::Status valid = ValidateName("dataset name", name); !valid.ok()) {
      scan.skipped.push_back(SkippedDataset{name, absl::StrCat("bad name: ", valid.message())});
      continue;
    }
    if (absl::Status complete = CheckMnistDirectory(entry.path().string()); !complete.ok()) {
      scan.skipped.push_back(SkippedDataset{name, std::string(complete.message())});
      continue;
    }
    scan.available.push_back(name);
  }
  std::sort(scan.available.begin(), scan.available.end());
  std::sort(scan.skipped.begin(), scan.skipped.end(),
            [](const SkippedDataset& a, const SkippedDataset& b) { return a.folder < b.folder; });
  return scan;
}

std::string DescribeSkipped(const std::vector<SkippedDataset>& skipped) {
  std::vector<std::string> parts;
  for (const SkippedDataset& folder : skipped) parts.push_back(absl::StrCat(folder.folder, " (", folder.reason, ")"));
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<std::shared_ptr<const MnistDirectory>> DatasetRegistry::Get(absl::string_view field,
                                                                           absl::string_view name) {
  CONVNET_RETURN_IF_ERROR(ValidateName(field, name));
  {
    absl::ReaderMutexLock lock(&mu_);
    auto found = loaded_.find(name);
    if (found != loaded_.end()) return found->second;
  }
  absl::MutexLock load_lock(&load_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);  // loaded by another caller meanwhile?
    auto found = loaded_.find(name);
    if (found != loaded_.end()) return found->second;
  }
  if (data_dir_.empty()) {
    return absl::NotFoundError(absl::StrCat(field, ": dataset ", Quote(name),
                                            " not found: the server has no --data_dir"));
  }
  const std::string dir = (fs::path(data_dir_) / std::string(name)).string();
  if (!IsMnistDirectory(dir)) {
    const DatasetScan scan = Scan();
    return absl::NotFoundError(absl::StrCat(
        field, ": dataset ", Quote(name), " not found in ", data_dir_, " (available: ",
        scan.available.empty() ? "none" : absl::StrJoin(scan.available, ", "),
        scan.skipped.empty() ? "" : absl::StrCat("; skipped: ", DescribeSkipped(scan.skipped)), ")"));
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<MnistDirectory> loaded = LoadMnistDirectory(dir);
  if (!loaded.ok()) {
    // The client asked for a valid dataset; the server's files are at fault.
    const std::string message = absl::StrCat("dataset ", Quote(name), " cannot be loaded: ",
                                             loaded.status().message());
    LogError(message);
    if (loaded.status().code() == absl::StatusCode::kNotFound) return absl::NotFoundError(message);
    return absl::DataLossError(message);
  }
  auto dataset = std::make_shared<const MnistDirectory>(*std::move(loaded));
  LogInfo(absl::StrCat("datasets: loaded ", Quote(name), " (", dataset->train.size(), " training, ",
                       dataset->test.size(), " test examples) in ",
                       absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)))));
  absl::MutexLock lock(&mu_);
  loaded_.emplace(std::string(name), dataset);
  return dataset;
}

}  // namespace convnet::server
