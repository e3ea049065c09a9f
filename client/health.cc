#include "client/health.h"

#include <cstdint>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/synchronization/notification.h"

namespace convnet::client {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

// HealthCheckRequest { string service = 1; }
std::string EncodeRequest(const std::string& service) {
  std::string bytes;
  if (service.empty()) return bytes;  // proto3 omits an empty string
  bytes.push_back(0x0A);              // field 1, wire type 2 (length-delimited)
  for (uint64_t length = service.size(); ; length >>= 7) {
    if (length < 0x80) {
      bytes.push_back(static_cast<char>(length));
      break;
    }
    bytes.push_back(static_cast<char>((length & 0x7F) | 0x80));
  }
  return bytes + service;
}

bool ReadVarint(const std::string& bytes, size_t* position, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *position < bytes.size(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(bytes[(*position)++]);
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// HealthCheckResponse { ServingStatus status = 1; }; unknown fields skipped.
bool DecodeResponse(const std::string& bytes, ServingStatus* serving) {
  *serving = ServingStatus::kUnknown;  // proto3 omits the zero value
  size_t position = 0;
  while (position < bytes.size()) {
    uint64_t tag, value;
    if (!ReadVarint(bytes, &position, &tag)) return false;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(bytes, &position, &value)) return false;
        if ((tag >> 3) == 1) *serving = static_cast<ServingStatus>(value);
        break;
      case 1: position += 8; break;
      case 5: position += 4; break;
      case 2:
        if (!ReadVarint(bytes, &position, &value)) return false;
        position += value;
        break;
      default: return false;
    }
  }
  return position == bytes.size();
}

}  // namespace

std::string ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing: return "SERVING";
    case ServingStatus::kNotServing: return "NOT_SERVING";
    case ServingStatus::kServiceUnknown: return "SERVICE_UNKNOWN";
    default: return "UNKNOWN";
  }
}

grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                         grpc::ClientContext* context, const std::string& service,
                         ServingStatus* serving) {
  const std::string request_bytes = EncodeRequest(service);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  grpc::GenericStub stub(channel);
  stub.UnaryCall(context, kCheckMethod, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status call_status) {
                   status = std::move(call_status);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) return status;

  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "unreadable health check response");
  }
  std::string response_bytes;
  for (const grpc::Slice& part : slices) {
    response_bytes.append(reinterpret_cast<const char*>(part.begin()), part.size());
  }
  if (!DecodeResponse(response_bytes, serving)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "malformed health check response");
  }
  return grpc::Status::OK;
}

}  // namespace convnet::client
