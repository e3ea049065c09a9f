#include "server/raw_messages.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace convnet::server {

absl::Status ParseRequest(absl::string_view method, const grpc::ByteBuffer& bytes,
                          google::protobuf::MessageLite* request) {
  if (!bytes.Valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat(method, ": the call carries no request message (expected a ", request->GetTypeName(), ")"));
  }
  // The reader needs a mutable buffer; the copy shares the request's slices.
  grpc::ByteBuffer readable(bytes);
  const grpc::Status parsed =
      grpc::GenericDeserialize<grpc::ProtoBufferReader, google::protobuf::MessageLite>(&readable, request);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(method, ": the request is not a valid ", request->GetTypeName(),
                                                   " (", bytes.Length(), " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status SerializeMessage(const google::protobuf::MessageLite& message, grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  const grpc::Status serialized =
      grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::MessageLite>(message, bytes, &own_buffer);
  if (!serialized.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot serialize the ", message.GetTypeName(), ": ", serialized.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace convnet::server
